"""Points: the double-entry ledger members earn into, and redemption at service centers."""

from fastapi import APIRouter

from points.ledger.router import router as ledger_router
from points.redemption.router import router as redemption_router

router = APIRouter()
router.include_router(ledger_router)
router.include_router(redemption_router)
