"""The case engine: reports and complaints from residents, the category catalogue, and the
staff workbench that moves cases through their states."""

from fastapi import APIRouter

from backend.cases.categories.router import router as categories_router
from backend.cases.router import router as cases_router
from backend.cases.staff.router import router as staff_router

router = APIRouter()
router.include_router(cases_router)
router.include_router(categories_router)
router.include_router(staff_router)
