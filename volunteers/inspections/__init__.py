"""Inspections: checklists filed on site, findings that become reports."""
