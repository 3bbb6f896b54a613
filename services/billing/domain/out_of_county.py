"""Out-of-county care (转外就医, 004 §十七: "医共体外发生的医保费用由医保经办机构负责结算…定期向医共体通报"): the
agency settles care its insured received outside the county and charges the fund's share to the resident's
community budget, which is what makes the community answer for keeping its patients in the county.

Charged when recorded, not at the month close: the provincial settlement system's file for a month
arrives after that month has closed, and a record must be charged whenever it comes until the year is
settled. Each recording posts one balanced journal per settled month, a debit to `OUT_OF_COUNTY` (in the
chart of accounts, domain/ledger.py) and a credit to the community's budget for each community; the
settlement then sees the budget that is left and reports the charge (`out_of_county`)."""

from __future__ import annotations

from . import ledger as acc
from .ledger import Journal

KIND = "out_of_county"


def care_journal(key: str, year: int, month: int, charges: dict[str, int]) -> Journal:
    """One recording's charges of one settled month, `charges` being fen per community."""
    j = Journal(KIND, key, f"{year}-{month:02d} 转外就医 / out-of-county care")
    for community, fen in sorted(charges.items()):
        j.add(acc.OUT_OF_COUNTY, fen, community)
        j.add(acc.BUDGET, -fen, community)
    j.check()
    return j


def disease_group(icd10: str) -> str:
    """The ICD-10 category a report groups diagnoses by (I63.9 → I63)."""
    return icd10[:3]
