"""Mediation on top of the case engine: the request with invitations and consent, the
mediation supermarket (studios, mediators, choosing, supervision), and the proceedings."""

from fastapi import APIRouter

from backend.mediation.proceedings.router import router as proceedings_router
from backend.mediation.requests.router import router as requests_router
from backend.mediation.supermarket.router import router as supermarket_router

router = APIRouter()
router.include_router(requests_router)
router.include_router(supermarket_router)
router.include_router(proceedings_router)
