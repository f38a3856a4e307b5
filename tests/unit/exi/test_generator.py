"""The committed codec sources are exactly what tools/exigen makes of the schemas."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.exi_vectors import XSD_DIR
from tools.exigen import __main__ as exigen
from tools.exigen.tables import snake_case
from tools.exigen.xsd import SchemaError, SchemaSet


def test_generated_files_are_up_to_date() -> None:
    stale = [
        str(path.relative_to(exigen.ROOT))
        for path, text in exigen.generate(XSD_DIR).items()
        if not path.is_file() or path.read_text() != text
    ]
    assert stale == [], "run: python -m tools.exigen"


@pytest.mark.parametrize(
    ("xsd", "python"),
    [
        ("EVTargetCurrent", "ev_target_current"),
        ("EVRESSSOC", "evresssoc"),
        ("SAScheduleTupleID", "sa_schedule_tuple_id"),
        ("DC_EVStatus", "dc_ev_status"),
        ("eMAID", "e_maid"),
        ("EVSEPresentActivePower_L2", "evse_present_active_power_l2"),
        ("ListOfRootCertificateIDs", "list_of_root_certificate_ids"),
        ("RemainingTimeToBulkSoC", "remaining_time_to_bulk_soc"),
        ("X509IssuerSerial", "x509_issuer_serial"),
        ("DHpublickey", "dh_public_key"),
    ],
)
def test_field_names_map_stably_to_snake_case(xsd: str, python: str) -> None:
    assert snake_case(xsd) == python


def test_unsupported_schema_constructs_are_named(tmp_path: Path) -> None:
    schema = tmp_path / "bad.xsd"
    schema.write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:x">'
        '<xs:complexType name="T"><xs:all><xs:element name="a" type="xs:int"/></xs:all>'
        "</xs:complexType></xs:schema>"
    )
    with pytest.raises(SchemaError, match=r"bad\.xsd: <all> in a complex type is not supported"):
        SchemaSet(schema)
