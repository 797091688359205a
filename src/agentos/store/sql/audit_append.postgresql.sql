-- append one audit row in one round trip, in the caller's transaction (audit_row)
WITH /*include audit_row*/
SELECT seq FROM audit_row
