"""`python -m pipeline.ui [--port 5000] [--store URI]`: the MLflow UI on the project's store."""
import sys

from pipeline.serve.ui import main

if __name__ == "__main__":
    sys.exit(main())
