"""Game Boy ROMs built in Python for the tests and the benchmark (no ROM is ever committed).

A ROM is a 32 KiB image: `nop; jp $0150` at the entry point 0x100, a title at 0x134,
cartridge type 0x00 (ROM only), the header checksum at 0x14D and hand-assembled SM83
machine code at 0x150 (see /work/shared/reference/pokemon_red_pyboy.md, section 4).
PyBoy's boot ROM does not check the Nintendo logo, so it stays zero.

The program (`build_rom`) is a stand-in for a game, once per frame (at v-blank):

- d-pad, on the frame a direction is newly pressed: right/left add/subtract 1 to the
  "player X" at D362, down/up add/subtract 1 to "player Y" at D361 (Pokemon Red's
  wXCoord / wYCoord);
- A (newly pressed): sets the next badge bit at D356 (badges = badges << 1 | 1) and adds
  10 to the score byte at C0A0;
- B (newly pressed): adds 1 to the low byte of the first party mon's HP (D16D), which
  the Pokemon Red env reads as healing;
- START (newly pressed): sets the next event flag bit at D748 (inside wEventFlags);
- every frame: a 16-bit little-endian frame counter at C0A2 (low) / C0A3 (high);
- the screen: VRAM holds a non-repeating pattern (filled once at start-up with the LCD
  off) and the scroll registers follow the player, SCX = 8 * X and SCY = 8 * Y, so moving
  changes the picture; BGP (the palette) is E4 xor the badge byte.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

ROM_SIZE = 0x8000
ENTRY = 0x100
CODE = 0x150
TITLE = 0x134
HEADER_CHECKSUM = 0x14D

# RAM addresses the program writes (the tests import these instead of repeating numbers).
PLAYER_Y = 0xD361
PLAYER_X = 0xD362
BADGES = 0xD356
SCORE = 0xC0A0
FRAME_COUNTER = 0xC0A2  # 2 bytes, little-endian
PREV_JOYPAD = 0xC001  # the program's own: last frame's buttons, for edge detection
PARTY_HP_LOW = 0xD16D  # low byte of the big-endian HP at D16C
EVENT_BYTE = 0xD748


class Asm:
    """A two-pass helper for hand-assembled SM83 code: bytes in, labels resolved.

    Each call writes the opcode bytes given by hand; the mnemonic is the documentation.
    Only `jr` (relative, 1-byte offset) and `jp` (absolute) need label fixups.
    """

    def __init__(self, origin: int) -> None:
        self.origin = origin
        self.code = bytearray()
        self.labels: dict[str, int] = {}
        self.fixups: list[tuple[int, str, str]] = []  # (offset in code, label, "rel" | "abs")
        self.lines: list[tuple[int, int, str]] = []  # (address, length, mnemonic); length 0: label

    @property
    def pc(self) -> int:
        return self.origin + len(self.code)

    def label(self, name: str) -> None:
        self.labels[name] = self.pc
        self.lines.append((self.pc, 0, f"{name}:"))

    def op(self, mnemonic: str, *data: int) -> None:
        self.lines.append((self.pc, len(data), mnemonic))
        self.code.extend(data)

    def jr(self, mnemonic: str, opcode: int, target: str) -> None:
        self.op(mnemonic, opcode, 0)
        self.fixups.append((len(self.code) - 1, target, "rel"))

    def jp(self, mnemonic: str, opcode: int, target: str) -> None:
        self.op(mnemonic, opcode, 0, 0)
        self.fixups.append((len(self.code) - 2, target, "abs"))

    def assemble(self) -> bytes:
        for offset, target, kind in self.fixups:
            address = self.labels[target]
            if kind == "rel":
                delta = address - (self.origin + offset + 1)  # relative to the next instruction
                if not -128 <= delta <= 127:
                    raise ValueError(f"jr to {target} is out of range ({delta})")
                self.code[offset] = delta & 0xFF
            else:
                self.code[offset] = address & 0xFF
                self.code[offset + 1] = address >> 8
        return bytes(self.code)

    def listing(self) -> str:
        """Address, bytes and mnemonic per instruction (call after `assemble`)."""
        out = []
        for address, length, text in self.lines:
            if length == 0:
                out.append(text)
                continue
            start = address - self.origin
            data = " ".join(f"{b:02X}" for b in self.code[start:start + length])
            out.append(f"  {address:04X}  {data:<9} {text}")
        return "\n".join(out)


def _lo(value: int) -> int:
    return value & 0xFF


def _hi(value: int) -> int:
    return value >> 8


def player_program() -> Asm:
    """The test game described in the module docstring, assembled at 0x150."""
    a = Asm(CODE)
    a.op("di", 0xF3)
    a.op("ld sp, $DFF0", 0x31, 0xF0, 0xDF)

    # The LCD may only be switched off during v-blank (LY = 144).
    a.label("boot_vblank")
    a.op("ldh a, [$FF44]      ; LY", 0xF0, 0x44)
    a.op("cp $90", 0xFE, 0x90)
    a.jr("jr nz, boot_vblank", 0x20, "boot_vblank")
    a.op("xor a", 0xAF)
    a.op("ldh [$FF40], a      ; LCDC = 0: LCD off, VRAM free to write", 0xE0, 0x40)

    # Fill tile data and the 9800 tile map (8000-9BFF) with (L xor H): no two tiles and no
    # two rows of the map look alike, so every scroll position shows a different picture.
    a.op("ld hl, $8000", 0x21, 0x00, 0x80)
    a.label("fill_vram")
    a.op("ld a, l", 0x7D)
    a.op("xor h", 0xAC)
    a.op("ld [hl+], a", 0x22)
    a.op("ld a, h", 0x7C)
    a.op("cp $9C", 0xFE, 0x9C)
    a.jr("jr nz, fill_vram", 0x20, "fill_vram")

    a.op("ld a, $E4", 0x3E, 0xE4)
    a.op("ldh [$FF47], a      ; BGP = E4 (identity shades)", 0xE0, 0x47)
    a.op("ld a, $91", 0x3E, 0x91)
    a.op("ldh [$FF40], a      ; LCDC: LCD on, tiles at 8000, map 9800, BG on", 0xE0, 0x40)

    a.label("main")
    a.label("wait_vblank")
    a.op("ldh a, [$FF44]", 0xF0, 0x44)
    a.op("cp $90", 0xFE, 0x90)
    a.jr("jr nz, wait_vblank", 0x20, "wait_vblank")

    # Joypad: select the d-pad (P14 low), read twice to let the lines settle; active low.
    a.op("ld a, $20", 0x3E, 0x20)
    a.op("ldh [$FF00], a", 0xE0, 0x00)
    a.op("ldh a, [$FF00]", 0xF0, 0x00)
    a.op("ldh a, [$FF00]", 0xF0, 0x00)
    a.op("cpl", 0x2F)
    a.op("and $0F", 0xE6, 0x0F)
    a.op("swap a              ; d-pad in bits 4-7: right, left, up, down", 0xCB, 0x37)
    a.op("ld b, a", 0x47)
    a.op("ld a, $10", 0x3E, 0x10)
    a.op("ldh [$FF00], a      ; select the buttons (P15 low)", 0xE0, 0x00)
    a.op("ldh a, [$FF00]", 0xF0, 0x00)
    a.op("ldh a, [$FF00]", 0xF0, 0x00)
    a.op("cpl", 0x2F)
    a.op("and $0F             ; buttons in bits 0-3: A, B, select, start", 0xE6, 0x0F)
    a.op("or b", 0xB0)
    a.op("ld c, a             ; c = held now", 0x4F)
    a.op("ld a, $30", 0x3E, 0x30)
    a.op("ldh [$FF00], a      ; deselect both", 0xE0, 0x00)
    a.op(f"ld a, [${PREV_JOYPAD:04X}]", 0xFA, _lo(PREV_JOYPAD), _hi(PREV_JOYPAD))
    a.op("cpl", 0x2F)
    a.op("and c", 0xA1)
    a.op("ld b, a             ; b = newly pressed this frame", 0x47)
    a.op("ld a, c", 0x79)
    a.op(f"ld [${PREV_JOYPAD:04X}], a", 0xEA, _lo(PREV_JOYPAD), _hi(PREV_JOYPAD))

    def on_bit(bit: int, name: str, body) -> None:
        a.op(f"bit {bit}, b", 0xCB, 0x40 | (bit << 3))
        a.jr(f"jr z, skip_{name}", 0x28, f"skip_{name}")
        body()
        a.label(f"skip_{name}")

    def inc_at(address: int, dec: bool = False) -> None:
        a.op(f"ld hl, ${address:04X}", 0x21, _lo(address), _hi(address))
        a.op("dec [hl]" if dec else "inc [hl]", 0x35 if dec else 0x34)

    on_bit(4, "right", lambda: inc_at(PLAYER_X))
    on_bit(5, "left", lambda: inc_at(PLAYER_X, dec=True))
    on_bit(6, "up", lambda: inc_at(PLAYER_Y, dec=True))
    on_bit(7, "down", lambda: inc_at(PLAYER_Y))

    def press_a() -> None:
        a.op(f"ld a, [${BADGES:04X}]", 0xFA, _lo(BADGES), _hi(BADGES))
        a.op("scf", 0x37)
        a.op("rla                 ; badges = badges << 1 | 1", 0x17)
        a.op(f"ld [${BADGES:04X}], a", 0xEA, _lo(BADGES), _hi(BADGES))
        a.op(f"ld a, [${SCORE:04X}]", 0xFA, _lo(SCORE), _hi(SCORE))
        a.op("add a, 10", 0xC6, 0x0A)
        a.op(f"ld [${SCORE:04X}], a", 0xEA, _lo(SCORE), _hi(SCORE))

    def press_start() -> None:
        a.op(f"ld a, [${EVENT_BYTE:04X}]", 0xFA, _lo(EVENT_BYTE), _hi(EVENT_BYTE))
        a.op("scf", 0x37)
        a.op("rla                 ; one more event flag set", 0x17)
        a.op(f"ld [${EVENT_BYTE:04X}], a", 0xEA, _lo(EVENT_BYTE), _hi(EVENT_BYTE))

    on_bit(0, "a", press_a)
    on_bit(1, "b", lambda: inc_at(PARTY_HP_LOW))
    on_bit(3, "start", press_start)

    # 16-bit little-endian frame counter.
    inc_at(FRAME_COUNTER)
    a.jr("jr nz, counted", 0x20, "counted")
    inc_at(FRAME_COUNTER + 1)
    a.label("counted")

    # Screen follows the player: SCX = 8 * X, SCY = 8 * Y; BGP = E4 xor badges.
    a.op(f"ld a, [${PLAYER_X:04X}]", 0xFA, _lo(PLAYER_X), _hi(PLAYER_X))
    a.op("add a, a", 0x87)
    a.op("add a, a", 0x87)
    a.op("add a, a", 0x87)
    a.op("ldh [$FF43], a      ; SCX", 0xE0, 0x43)
    a.op(f"ld a, [${PLAYER_Y:04X}]", 0xFA, _lo(PLAYER_Y), _hi(PLAYER_Y))
    a.op("add a, a", 0x87)
    a.op("add a, a", 0x87)
    a.op("add a, a", 0x87)
    a.op("ldh [$FF42], a      ; SCY", 0xE0, 0x42)
    a.op(f"ld a, [${BADGES:04X}]", 0xFA, _lo(BADGES), _hi(BADGES))
    a.op("xor $E4", 0xEE, 0xE4)
    a.op("ldh [$FF47], a      ; BGP", 0xE0, 0x47)

    # Run the loop once per frame: wait for v-blank to end before looking for the next.
    a.label("wait_vblank_end")
    a.op("ldh a, [$FF44]", 0xF0, 0x44)
    a.op("cp $90", 0xFE, 0x90)
    a.jr("jr z, wait_vblank_end", 0x28, "wait_vblank_end")
    a.jp("jp main", 0xC3, "main")
    return a


def header_checksum(rom: bytes | bytearray) -> int:
    """The byte at 0x14D: x = 0; for i in 0x134..0x14C: x = x - rom[i] - 1 (mod 256)."""
    x = 0
    for i in range(0x134, 0x14D):
        x = (x - rom[i] - 1) & 0xFF
    return x


def rom_bytes(title: str = "PIPELINE TEST") -> bytes:
    """A 32 KiB ROM-only cartridge running `player_program()`."""
    if len(title) > 15 or not title.isascii():
        raise ValueError(f"title: {title!r} must be at most 15 ASCII characters")
    rom = bytearray(ROM_SIZE)
    rom[ENTRY:ENTRY + 4] = bytes([0x00, 0xC3, _lo(CODE), _hi(CODE)])  # nop; jp $0150
    rom[TITLE:TITLE + len(title)] = title.encode("ascii")
    rom[0x147] = 0x00  # cartridge type: ROM only
    rom[0x148] = 0x00  # ROM size: 32 KiB
    rom[0x149] = 0x00  # no cartridge RAM
    rom[HEADER_CHECKSUM] = header_checksum(rom)
    code = player_program().assemble()
    rom[CODE:CODE + len(code)] = code
    return bytes(rom)


def build_rom(path: str | Path, title: str = "PIPELINE TEST") -> Path:
    """Write the test ROM to `path` (a pytest tmp_path file; never into the repository)."""
    path = Path(path)
    path.write_bytes(rom_bytes(title))
    return path


def sha1(path: str | Path) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


if __name__ == "__main__":
    program = player_program()
    program.assemble()
    print(program.listing())
