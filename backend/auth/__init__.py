"""Identity: WeChat login, tokens, the caller's profile and phone, and staff roles on regions.

Every domain imports `backend.auth.principal`, so this package stays light: importing it
must not pull in the login endpoints (which reach the regions, which import the principal).
The app mounts `backend.auth.router.router`.
"""
