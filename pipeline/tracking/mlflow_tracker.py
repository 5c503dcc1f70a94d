"""The MLflow tracker: an embedded SQLite store by default, or any tracking server.

Metrics are buffered in memory and written by a background thread with `log_batch`
(one DB/HTTP call per batch, not per value: see shared stack notes, ~3.5 ms per single
`log_metric` vs ~80 us per value in a batch).
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from pipeline.tracking.redact import redact, redact_text

log = logging.getLogger(__name__)
_MAX_BATCH = 1000  # MLflow's limit of metrics per log_batch call


@contextlib.contextmanager
def _sqlite_store_lock(uri: str) -> Iterator[None]:
    """For an SQLite store, hold an exclusive lock on its folder while a run is opened.

    Two processes opening a new store at once both run MLflow's schema migration and one
    crashes ("duplicate column name"); two creating the same experiment collide the same
    way. flock on the folder (no lock file left behind) makes them take turns; it is
    released if the process dies. Other stores need no lock.
    """
    if not uri.startswith("sqlite:///"):
        yield
        return
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    folder = Path(uri.removeprefix("sqlite:///")).parent
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)   # closing the descriptor releases the lock


class TrackingError(RuntimeError):
    """The tracking store cannot be reached or refuses the run."""


class MLflowTracker:
    def __init__(self, uri: str = "sqlite:///outputs/mlflow.db",
                 artifact_dir: str | None = None,
                 experiment: str | None = None, flush_interval_s: float = 2.0,
                 spool_dir: str = "outputs/spool", **_: Any) -> None:
        self.uri = absolute_sqlite_uri(uri)
        self.spool_dir = spool_dir
        self.artifact_dir = artifact_dir
        self.experiment = experiment
        self.flush_interval_s = flush_interval_s
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self._client: Any = None
        self._pending: list[Any] = []
        # Artifacts not uploaded yet (the store was unreachable), latest per destination.
        self._artifacts: dict[tuple[str, str | None], str] = {}
        self._degraded = False  # the store failed: stop trying in the training thread
        self.spooled_to: Path | None = None
        self._lock = threading.Lock()  # guards _pending and _artifacts
        self._write_lock = threading.Lock()  # one writer at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # On resume: the last step already stored per metric key. Points at or below it
        # were logged before the crash, so re-logging them would duplicate steps.
        self._floor: dict[str, int] = {}
        self._tracing: tuple[str, Any] | None = None  # (autolog flavor, what undoes enable_tracing)

    # ---- run lifecycle
    @property
    def client(self) -> Any:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            if self.uri.startswith("sqlite:///"):
                Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            elif self.uri.startswith(("http://", "https://")):
                _check_reachable(self.uri)
                # MLflow's client retries a dead server for minutes per call; our writer
                # thread retries on its own, so each call gives up quickly instead.
                # Its "View run at <url>" lines would print a password in the URI; our
                # summary names the run with the password redacted.
                for var, value in (("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1"),
                                   ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1"),
                                   ("MLFLOW_HTTP_REQUEST_TIMEOUT", "20"),
                                   ("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")):
                    os.environ.setdefault(var, value)
            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    def start_run(self, name: str | None = None, *, run_id: str | None = None,
                  tags: dict[str, str] | None = None, experiment: str | None = None) -> str:
        """Create a run (or reopen `run_id` to continue it) and start the writer thread."""
        try:
            with _sqlite_store_lock(self.uri):
                self._open_run(name, run_id, tags, experiment)
        except TrackingError:
            raise
        except Exception as ex:  # noqa: BLE001 - every store failure gets the same clear line
            raise TrackingError(f"tracking.uri: cannot use MLflow store {redact_text(self.uri)}: "
                                f"{type(ex).__name__}: {_first_line(ex)}") from ex
        self._stop.clear()
        self._thread = threading.Thread(target=self._writer, name="mlflow-writer", daemon=True)
        self._thread.start()
        return self.run_id

    def _open_run(self, name: str | None, run_id: str | None, tags: dict[str, str] | None,
                  experiment: str | None) -> None:
        if run_id is not None:
            run = self.client.get_run(run_id)
            self.experiment_id = run.info.experiment_id
            self.client.update_run(run_id, status="RUNNING")
            self.run_id = run_id
            self._floor = {key: max(m.step for m in self.client.get_metric_history(run_id, key))
                           for key in run.data.metrics}
        else:
            self.experiment_id = self._experiment_id(self.experiment or experiment or "Default")
            run = self.client.create_run(self.experiment_id, run_name=name,
                                         tags=_clean_tags(tags or {}))
            self.run_id = run.info.run_id

    def _experiment_id(self, name: str) -> str:
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        location = None
        if self.artifact_dir and not self.uri.startswith(("http://", "https://")):
            location = Path(self.artifact_dir).resolve().as_uri()
        elif self.uri.startswith("sqlite:///"):  # beside the store, wherever it is
            location = (Path(self.uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except Exception:
            # Another process created it between our lookup and create (parallel sweep jobs).
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    def end_run(self, status: str = "FINISHED") -> None:
        """Write everything still buffered and close the run; if the store is gone, spool
        it all locally (see pipeline/tracking/spool.py) so nothing is lost."""
        if self.run_id is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._end_tracing()
        try:
            if self.uri.startswith(("http://", "https://")):
                _check_reachable(self.uri)
            self.flush()
            self.client.set_terminated(self.run_id, status=status)
        except Exception as ex:  # noqa: BLE001 - spool instead of losing the data
            self._spool(status, ex)

    # ---- logging
    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        clean = redact(params)
        items = [Param(str(k), str(v)[:6000]) for k, v in clean.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i:i + 100], synchronous=True)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        points = [Metric(k, float(v), ts, int(step)) for k, v in metrics.items()
                  if not self._floor or step > self._floor.get(k, -1)]
        with self._lock:
            self._pending.extend(points)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Upload now; while the store is unreachable, queue it (the latest file per
        destination) for the writer thread, so training never waits on an outage."""
        key = (Path(path).name, artifact_path)
        if not self._degraded:
            try:
                self.client.log_artifact(self.run_id, str(path), artifact_path)
                return
            except Exception:  # noqa: BLE001 - retried by the writer thread
                self._degraded = True
        with self._lock:
            self._artifacts[key] = str(path)

    def load_run_checkpoint(self, run_id: str) -> dict[str, Any]:
        """A run's checkpoints/latest.pt, loaded (resume and serve.policy by run id). The
        downloaded copy, replay buffer and all, is removed once loaded."""
        import tempfile

        from pipeline.callbacks.checkpoint import LATEST, load_checkpoint

        with tempfile.TemporaryDirectory(prefix="checkpoint-") as tmp:
            return load_checkpoint(self._download(run_id, f"checkpoints/{LATEST}", tmp))

    def _download(self, run_id: str, artifact_path: str, dst: str) -> Path:
        db = self.uri.removeprefix("sqlite:///")
        if self.uri.startswith("sqlite:///") and not Path(db).exists():
            raise TrackingError(f"run.resume: {run_id} is not a checkpoint file and there is no "
                                f"MLflow store at {db} to look it up in")
        try:
            self.client.get_run(run_id)
        except Exception as ex:  # noqa: BLE001 - unknown id or unreachable store
            raise TrackingError(f"run.resume: {run_id} is not a run in {redact_text(self.uri)} "
                                f"(expected a checkpoint path or a run id): {_first_line(ex)}"
                                ) from ex
        try:
            local = self.client.download_artifacts(run_id, artifact_path, dst)
        except Exception as ex:  # noqa: BLE001
            raise TrackingError(f"run.resume: run {run_id} has no {artifact_path} "
                                "(was it run with the checkpoint callback?)") from ex
        return Path(local)

    def set_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, v) for k, v in _clean_tags(tags).items()]
        self.client.log_batch(self.run_id, tags=items, synchronous=True)

    def flush(self) -> None:
        """Write every buffered metric and queued artifact now (the writer thread does this
        periodically). On failure nothing is dropped: it stays queued and this raises."""
        with self._write_lock:
            try:
                while True:
                    with self._lock:
                        batch = self._pending[:_MAX_BATCH]
                        del self._pending[:_MAX_BATCH]
                    if not batch:
                        break
                    try:
                        self.client.log_batch(self.run_id, metrics=batch, synchronous=True)
                    except Exception:
                        with self._lock:  # keep them for the next attempt
                            self._pending[:0] = batch
                        raise
                with self._lock:
                    queued = list(self._artifacts.items())
                for key, path in queued:
                    self.client.log_artifact(self.run_id, path, key[1])
                    with self._lock:
                        if self._artifacts.get(key) == path:
                            del self._artifacts[key]
            except Exception:
                self._degraded = True
                raise
            self._degraded = False

    def _spool(self, status: str, error: BaseException) -> None:
        from pipeline.tracking.spool import write_spool

        with self._lock:
            points, self._pending = self._pending, []
            artifacts = [(path, key[1]) for key, path in self._artifacts.items()]
            self._artifacts.clear()
        self.spooled_to = write_spool(Path(self.spool_dir), uri=self.uri, run_id=self.run_id,
                                      status=status, metrics=points, artifacts=artifacts)
        log.warning("MLflow store %s unreachable at the end of the run (%s): %d metric points "
                    "and %d artifacts saved to %s; upload them with: "
                    "python -m pipeline.tracking.spool %s", redact_text(self.uri),
                    _first_line(error), len(points), len(artifacts), self.spooled_to,
                    self.spooled_to)

    def _writer(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - retried at the next interval and at end_run
                pass

    # ---- for the summary
    def describe(self) -> dict[str, str]:
        ui = f"mlflow ui --backend-store-uri {self.uri}"
        return {"run_id": self.run_id or "", "store": redact_text(self.uri),
                "experiment_id": self.experiment_id or "", "ui": redact_text(ui)}

    # ---- models (MLflow 3: logged models named with name=, registry aliases, no stages)
    def log_model(self, kind: str, **kwargs: Any) -> dict[str, str]:
        """`kind` "pytorch" -> log_pytorch_model(**kwargs); "pyfunc" -> log_pyfunc_model(**kwargs)."""
        methods = {"pytorch": self.log_pytorch_model, "pyfunc": self.log_pyfunc_model}
        if kind not in methods:
            raise ValueError(f"log_model: kind {kind!r} is not a model kind "
                             f"(expected one of: {', '.join(methods)})")
        return methods[kind](**kwargs)

    def log_pytorch_model(self, model: Any, name: str, *, signature: Any = None,
                          pip_requirements: list[str] | None = None, step: int = 0,
                          tags: dict[str, Any] | None = None) -> dict[str, str]:
        """An nn.Module with the mlflow.pytorch flavor, in this run; returns model_id/model_uri.

        Pickle format, not MLflow 3's pt2 default: pt2 needs an input example and fixes the
        batch size at export, while a pickled module loads back as the same class
        (`mlflow.pytorch.load_model(uri)`) taking any batch. The models come from our own
        store, so pickle's "runs code on load" caveat is accepted (its warning is muted).
        """
        import mlflow.pytorch

        return self._log_model(mlflow.pytorch.log_model, name, step, tags, pytorch_model=model,
                               serialization_format="pickle", signature=signature,
                               pip_requirements=pip_requirements)

    def log_pyfunc_model(self, name: str, python_model: str | Path, *,
                         artifacts: dict[str, str] | None = None, signature: Any = None,
                         input_example: Any = None, pip_requirements: list[str] | None = None,
                         step: int = 0, tags: dict[str, Any] | None = None) -> dict[str, str]:
        """A pyfunc model from code (`python_model`: a .py file ending in
        `mlflow.models.set_model(...)`), in this run; returns model_id/model_uri."""
        import mlflow.pyfunc

        return self._log_model(mlflow.pyfunc.log_model, name, step, tags,
                               python_model=str(python_model), artifacts=artifacts,
                               signature=signature, input_example=input_example,
                               pip_requirements=pip_requirements)

    def _log_model(self, log_fn: Any, name: str, step: int, tags: dict[str, Any] | None,
                   **kwargs: Any) -> dict[str, str]:
        """Log into self.run_id without a fluent active run.

        The LoggedModel is created here, in this run's experiment with this run as its
        source, and handed to the flavor's log_model as `model_id`; the run lists it as an
        output. So no `mlflow.start_run` (which would end our run on exit, and which an
        inherited MLFLOW_RUN_ID could redirect) and no global experiment are involved. The
        flavor functions read the global tracking URI, so it points at this store only for
        the duration of the call.
        """
        from mlflow.entities import LoggedModelOutput

        if kwargs.get("pip_requirements") is None:  # inferring them costs about 6 s per model
            from pipeline.models.common import pip_requirements

            kwargs["pip_requirements"] = pip_requirements()
        logged = self.client.create_logged_model(self.experiment_id, name=name,
                                                 source_run_id=self.run_id,
                                                 tags=_clean_tags(tags or {}))
        try:
            with self._fluent():
                info = log_fn(name=name, model_id=logged.model_id, step=int(step), **kwargs)
        except Exception:
            self.client.finalize_logged_model(logged.model_id, "FAILED")
            raise
        self.client.log_outputs(self.run_id, [LoggedModelOutput(logged.model_id, int(step))])
        return {"model_id": logged.model_id, "model_uri": info.model_uri, "name": name}

    def register_model(self, name: str, model_uri: str, *, tags: dict[str, Any] | None = None,
                       aliases: tuple[str, ...] | list[str] = ()) -> str:
        """A new version of registered model `name` (created if new) from a logged model's
        `models:/<model_id>` URI, with version `tags`; `aliases` then point at it.
        Returns the version."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(name)
        except MlflowException as ex:
            if ex.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                raise
        model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
        with self._fluent():  # the SQL registry resolves models:/ sources via the global URI
            version = self.client.create_model_version(name, source=model_uri,
                                                       run_id=self.run_id,
                                                       tags=_clean_tags(tags or {}),
                                                       model_id=model_id).version
        for alias in aliases:
            self.client.set_registered_model_alias(name, alias, str(version))
        return str(version)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point `models:/name@alias` at `version` (moving it from where it was)."""
        self.client.set_registered_model_alias(name, alias, str(version))

    def get_alias_version(self, name: str, alias: str) -> dict[str, Any] | None:
        """The version `name@alias` points at ({version, run_id, source, tags}); None when
        the model or the alias does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version_by_alias(name, alias)
        except MlflowException as ex:
            if ex.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                return None
            raise
        return {"version": str(mv.version), "run_id": mv.run_id, "source": mv.source,
                "tags": dict(mv.tags)}

    def run_model_versions(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """The registered model versions created from run `run_id` (this run by default),
        as the registry has them now: [{name, version, aliases, tags, source}], by name and
        version."""
        run_id = run_id or self.run_id
        if run_id is None:
            return []
        found = self.client.search_model_versions(f"run_id = '{run_id}'")
        aliases: dict[tuple[str, str], list[str]] = {}
        for name in sorted({mv.name for mv in found}):  # search results carry no aliases
            for alias, version in (self.client.get_registered_model(name).aliases or {}).items():
                aliases.setdefault((name, str(version)), []).append(alias)
        out = [{"name": mv.name, "version": str(mv.version),
                "aliases": sorted(aliases.get((mv.name, str(mv.version)), [])),
                "tags": dict(mv.tags or {}), "source": mv.source} for mv in found]
        return sorted(out, key=lambda v: (v["name"], int(v["version"])))

    def set_model_version_tags(self, name: str, version: str, tags: dict[str, Any]) -> None:
        for key, value in _clean_tags(tags).items():
            self.client.set_model_version_tag(name, str(version), key, value)

    def load_pytorch_model(self, model_uri: str) -> Any:
        """`mlflow.pytorch.load_model(model_uri)` against this store, on the CPU."""
        import mlflow.pytorch

        with self._fluent():
            return mlflow.pytorch.load_model(model_uri, map_location="cpu")

    @contextlib.contextmanager
    def _fluent(self) -> Iterator[None]:
        """For the duration of one mlflow.* model call: the global tracking URI is this
        store (the flavor functions and the SQL registry read it), artifact progress bars
        are off (they would cut through the run's console output), and mlflow.pytorch's
        pickle warning is muted (pickle is chosen on purpose, see log_pytorch_model)."""
        import logging

        from mlflow.tracking._tracking_service.utils import _use_tracking_uri

        mute = _MessageFilter("Saving pytorch model by Pickle")
        logger = logging.getLogger("mlflow.pytorch")
        logger.addFilter(mute)
        # _use_tracking_uri restores the global URI but also sets or clears the
        # MLFLOW_TRACKING_URI variable; put back exactly what the process had.
        saved = {k: os.environ.get(k) for k in ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR",
                                                "MLFLOW_TRACKING_URI")}
        os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
        try:
            with _use_tracking_uri(self.uri):
                yield
        finally:
            logger.removeFilter(mute)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    # ---- the old tracker's calls (pipeline users of the previous system)
    def log_episode_end(self, agent: Any) -> None:
        """Log the agent's last finished episode at step `agent.steps`: rollout/ep_return and
        rollout/ep_length (from `last_episode_return` / `last_episode_length`) and
        train/epsilon, for whichever of them the agent has."""
        metrics = {}
        for key, attr in (("rollout/ep_return", "last_episode_return"),
                          ("rollout/ep_length", "last_episode_length"),
                          ("train/epsilon", "epsilon")):
            value = getattr(agent, attr, None)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                metrics[key] = float(value)
        if metrics:
            self.log_metrics(metrics, int(getattr(agent, "steps", 0)))

    def log_custom_metric(self, name: str, value: float, step: int | None = None) -> None:
        """One metric value (buffered like every other); step None means 0."""
        self.log_metrics({name: float(value)}, 0 if step is None else int(step))

    # ---- LLM call tracing
    def enable_tracing(self, flavor: str) -> None:
        """Record every call of an LLM library (`flavor`: "openai" or "dspy") as an MLflow
        trace in this run's experiment, linked to this run (the run's Traces tab).

        A trace is linked to a run by its metadata `mlflow.sourceRun`, which MLflow sets
        from the fluent active run. We set it through `mlflow.tracing.context` instead and
        send traces to this run's experiment with `mlflow.tracing.set_destination`: a
        fluent run would be ended by MLflow's exit hook with its own status, and would make
        every `log_model` link the model to the run a second time. The global tracking URI
        points at this store until end_run (traces are exported in the background). The
        integrations record each call's arguments and response, never the client's key
        (mlflow.dspy also drops api_key/api_base from the LM settings it records).
        """
        import contextlib
        import importlib

        import mlflow
        from mlflow.entities.trace_location import MlflowExperimentLocation
        from mlflow.tracing.constant import TraceMetadataKey
        from mlflow.tracking._tracking_service.utils import _use_tracking_uri

        if self._tracing is not None or self.run_id is None:
            return
        undo = contextlib.ExitStack()
        undo.enter_context(_use_tracking_uri(self.uri))  # restores the previous URI on close
        mlflow.tracing.set_destination(MlflowExperimentLocation(self.experiment_id))
        undo.enter_context(mlflow.tracing.context(
            metadata={TraceMetadataKey.SOURCE_RUN: self.run_id}))
        self._tracing = (flavor, undo)
        importlib.import_module(f"mlflow.{flavor}").autolog(log_traces=True, silent=True)

    def _end_tracing(self) -> None:
        """Write queued traces, turn the autolog off, drop the trace context and destination."""
        if self._tracing is None:
            return
        import importlib

        import mlflow

        flavor, undo = self._tracing
        self._tracing = None
        with undo:  # restores the tracking URI and leaves the trace context
            try:
                mlflow.flush_trace_async_logging()
            finally:
                importlib.import_module(f"mlflow.{flavor}").autolog(disable=True, silent=True)
                mlflow.tracing.reset()  # forgets the destination (and re-initializes lazily)


def _check_reachable(uri: str, timeout_s: float = 5.0) -> None:
    """Fail fast with one line: MLflow's own client retries a dead server for minutes."""
    import base64
    import urllib.error
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(uri.rstrip("/"))
    request = urllib.request.Request(
        urllib.parse.urlunsplit(parts._replace(netloc=parts.hostname + (
            f":{parts.port}" if parts.port else ""), path=parts.path + "/health")))
    if parts.username:  # http://user:password@host: basic auth, as MLflow's client sends it
        token = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        request.add_header("Authorization", "Basic " + base64.b64encode(token.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout_s):
            return
    except urllib.error.HTTPError:
        return  # something answers; MLflow itself will say if it is not a tracking server
    except (urllib.error.URLError, OSError) as ex:
        reason = getattr(ex, "reason", ex)
        raise TrackingError(f"tracking.uri: cannot reach MLflow server at {redact_text(uri)} "
                            f"({reason}); start it or set tracking.uri / MLFLOW_TRACKING_URI"
                            ) from None


def absolute_sqlite_uri(uri: str) -> str:
    """sqlite:///relative.db -> sqlite:////abs/relative.db, so the summary's UI command
    works from any directory."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri.removeprefix(prefix)).resolve())
    return uri


def _clean_tags(tags: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v)[:5000] for k, v in redact(tags).items()}


def _first_line(ex: BaseException) -> str:
    text = str(ex).strip().splitlines()
    return redact_text(text[0]) if text else ""


class _MessageFilter:
    """A logging filter that drops records starting with `prefix`."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def filter(self, record: Any) -> bool:
        return not str(record.msg).startswith(self.prefix)
