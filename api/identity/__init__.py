"""Who is asking: hospitals, citizens, staff tokens and the audit log."""
