"""Random schema-valid messages of every root element: encode -> decode -> equal.

Both backends must also produce the same bytes and read them back the same way.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charger.protocols import exi
from charger.protocols.exi import _cbackend, _pycodec
from tests.support.exi_strategies import messages, roots

C = _cbackend.CBackend()
PY = _pycodec.PythonBackend()
CASES = [(schema.value, name, index) for schema in exi.Schema for name, index in roots(schema)]


IDS = [f"{schema}-{element}" for schema, element, _ in CASES]
SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]


@pytest.mark.parametrize(("schema", "element", "root"), CASES, ids=IDS)
@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=SLOW_IS_FINE,
)
@given(data=st.data())
def test_random_valid_messages_round_trip(
    schema: str, element: str, root: int, data: st.DataObject
) -> None:
    name, message = data.draw(messages(schema, root))
    encoded = C.encode(schema, message, name, False)
    assert PY.encode(schema, message, name, False) == encoded
    assert C.decode(schema, encoded, False) == (name, message)
    assert PY.decode(schema, encoded, False) == (name, message)
