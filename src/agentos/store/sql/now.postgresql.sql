-- fragment: the database's clock, as every statement reads it (included as /*include now*/)
statement_timestamp()
