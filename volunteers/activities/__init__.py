"""Activities: patrols and inspections staff publish, enrolment and the waitlist."""
