-- fragment: the database's clock, as every statement reads it (included as /*include now*/),
-- in the text layout SQLAlchemy's SQLite DateTime stores, so it compares with stored times
strftime('%Y-%m-%d %H:%M:%f000', 'now')
