"""Disease catalogues per county: the grassroots catalogue (per tier) and the first-in-county list (at
least the county's minimum of diseases: `settings.RegistryRules.first_in_county_minimum`, 50 by 004 §十一)."""

from __future__ import annotations

import re
from enum import StrEnum

from shared.errors import Invalid

ICD10 = re.compile(r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$")


class Catalogue(StrEnum):
    GRASSROOTS = "grassroots"  # 基层首诊病种
    FIRST_IN_COUNTY = "first_in_county"  # 县域内首诊病种


def normalise_icd10(code: str) -> str:
    clean = code.strip().upper()
    if not ICD10.match(clean):
        raise Invalid("invalid-icd10", f"ICD-10 编码格式错误：{code}", f"Not an ICD-10 code: {code}")
    return clean


def check_tier(catalogue: Catalogue, tier: str) -> None:
    if catalogue == Catalogue.FIRST_IN_COUNTY and tier != "all":
        raise Invalid(
            "catalogue-tier", "县域首诊目录不分层级", "The first-in-county catalogue has no tier (use 'all')"
        )
    if catalogue == Catalogue.GRASSROOTS and tier not in ("township", "community", "village", "all"):
        raise Invalid(
            "catalogue-tier",
            "基层目录层级须为乡镇、社区或村",
            "A grassroots catalogue tier is township, community or village",
        )
