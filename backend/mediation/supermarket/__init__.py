"""The mediation supermarket: studios, mediators, choosing a studio, supervision."""
