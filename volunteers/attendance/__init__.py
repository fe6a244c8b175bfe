"""Attendance: check-in and check-out on a rotating code, judging, review and pay-out."""
