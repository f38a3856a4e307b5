"""The one exception every EXI backend raises."""

from __future__ import annotations


class ExiError(ValueError):
    """A message that cannot be encoded or a stream that cannot be decoded.

    `bit_offset` is where decoding stopped (None for encoding errors, which name the
    field path instead).
    """

    def __init__(self, message: str, bit_offset: int | None = None) -> None:
        if bit_offset is not None:
            message = f"{message} (at bit {bit_offset})"
        super().__init__(message)
        self.bit_offset = bit_offset
