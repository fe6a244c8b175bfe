"""Request and response bodies of the category catalogue."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from backend.cases.models import CaseKind
from backend.cases.schemas import CATEGORY_EXAMPLE
from backend.core.text import Text

CATEGORY_CODE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"


# --- Categories --------------------------------------------------------------------------


class CategoryOut(BaseModel):
    """A kind of report or complaint, with its SLA and the unit that handles it."""

    id: uuid.UUID
    kind: CaseKind
    code: str = Field(description="Stable code, usable instead of the id when submitting.")
    name: str = Field(description="Name in Chinese, as shown in the app.")
    name_en: str
    response_hours: int = Field(description="Hours within which staff must accept the case.")
    resolution_hours: int = Field(description="Hours within which the case must be resolved.")
    handling_unit: str = Field(description="The unit that handles it by default.")
    handling_unit_en: str
    position: int = Field(description="Order in the app's list (ascending).")
    active: bool

    model_config = ConfigDict(json_schema_extra={"example": CATEGORY_EXAMPLE})


class CategoryCreate(BaseModel):
    kind: CaseKind
    code: str = Field(pattern=CATEGORY_CODE_PATTERN, description="Lower-case letters, digits, _.")
    name: Text = Field(min_length=1, max_length=64)
    name_en: Text = Field(min_length=1, max_length=64)
    response_hours: int = Field(ge=1, le=8760)
    resolution_hours: int = Field(ge=1, le=8760)
    handling_unit: Text = Field(min_length=1, max_length=64)
    handling_unit_en: Text = Field(min_length=1, max_length=64)
    position: int = Field(0, ge=0, le=1_000_000)
    active: bool = True

    model_config = ConfigDict(
        json_schema_extra={
            "example": {key: value for key, value in CATEGORY_EXAMPLE.items() if key != "id"}
        }
    )


class CategoryUpdate(BaseModel):
    """Fields to change; a field left out stays as it is. Kind and code never change."""

    # Optional but never null: the default is not validated, an explicit null is refused.
    name: Text = Field(None, min_length=1, max_length=64, validate_default=False)
    name_en: Text = Field(None, min_length=1, max_length=64, validate_default=False)
    response_hours: int = Field(None, ge=1, le=8760, validate_default=False)
    resolution_hours: int = Field(None, ge=1, le=8760, validate_default=False)
    handling_unit: Text = Field(None, min_length=1, max_length=64, validate_default=False)
    handling_unit_en: Text = Field(None, min_length=1, max_length=64, validate_default=False)
    position: int = Field(None, ge=0, le=1_000_000, validate_default=False)
    active: bool = Field(None, validate_default=False)

    model_config = ConfigDict(
        json_schema_extra={"example": {"response_hours": 2, "resolution_hours": 48}}
    )
