"""What makes an institution's tier, type and membership consistent."""

from __future__ import annotations

from enum import StrEnum

from shared.errors import Invalid


class Tier(StrEnum):
    COUNTY = "county"
    TOWNSHIP = "township"
    COMMUNITY = "community"
    VILLAGE = "village"


class InstitutionType(StrEnum):
    GENERAL = "general"
    TCM = "tcm"
    MATERNAL_CHILD = "maternal_child"
    TOWNSHIP_CENTRE = "township_centre"
    COMMUNITY_CENTRE = "community_centre"
    VILLAGE_CLINIC = "village_clinic"
    CDC = "cdc"
    PRIVATE = "private"


class Membership(StrEnum):
    LEAD = "lead"
    TIGHT = "tight"
    LOOSE = "loose"
    COLLABORATING = "collaborating"


class ServiceCentre(StrEnum):
    IMAGING = "imaging"
    LAB = "lab"
    ECG = "ecg"
    PATHOLOGY = "pathology"
    STERILISATION = "sterilisation"


# the tier a type must sit at; types not listed may sit at any tier
TYPE_TIER = {
    InstitutionType.TOWNSHIP_CENTRE: Tier.TOWNSHIP,
    InstitutionType.COMMUNITY_CENTRE: Tier.COMMUNITY,
    InstitutionType.VILLAGE_CLINIC: Tier.VILLAGE,
    InstitutionType.CDC: Tier.COUNTY,
    InstitutionType.MATERNAL_CHILD: Tier.COUNTY,
}


def check_institution(
    tier: Tier, kind: InstitutionType, membership: Membership | None, community_id: object | None
) -> None:
    required = TYPE_TIER.get(kind)
    if required is not None and tier != required:
        raise Invalid(
            "tier-type-mismatch",
            f"机构类型 {kind} 只能属于 {required} 层级",
            f"An institution of type {kind} must be at tier {required}",
        )
    if (membership is None) != (community_id is None):
        raise Invalid(
            "membership-needs-community",
            "加入医共体须同时给出医共体与成员关系",
            "community and membership must be given together",
        )
    if membership == Membership.LEAD and tier != Tier.COUNTY:
        raise Invalid(
            "lead-must-be-county", "牵头医院须为县级医院", "The lead hospital must be a county hospital"
        )
    if membership == Membership.COLLABORATING and kind not in (
        InstitutionType.CDC,
        InstitutionType.MATERNAL_CHILD,
    ):
        raise Invalid(
            "collaborating-kind",
            "协同单位须为疾控中心或妇幼保健院",
            "A collaborating unit must be a CDC or maternal-child hospital",
        )
