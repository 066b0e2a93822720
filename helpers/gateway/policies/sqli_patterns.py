"""The SQL-injection pattern table: :data:`SQLI_PATTERNS`, one :class:`SqliPattern` per rule.

The rules are data, grouped in AxonFlow's eight :data:`SQLI_CATEGORIES`, and written in a
readable form: :func:`widen_spaces` widens each ``\\s`` so inline comments count as whitespace when
:mod:`helpers.gateway.policies.sqli` compiles them. The scanner itself
(:func:`~helpers.gateway.policies.sqli.scan_sqli`) lives there. Introduced in ``05_policies.ipynb``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SQLI_CATEGORIES", "SQLI_PATTERNS", "SqliPattern", "widen_spaces"]

#: Canonical reporting order of the categories (policy id is ``sqli_<category>``).
SQLI_CATEGORIES: tuple[str, ...] = (
    "union_based",
    "boolean_blind",
    "time_based",
    "error_based",
    "stacked_queries",
    "comment_injection",
    "generic",
    "dangerous_query",
)


@dataclass(frozen=True, slots=True)
class SqliPattern:
    """One detection rule: ``regex`` as written (``\\s`` also accepts ``/* */`` when compiled).

    >>> SQLI_PATTERNS[0]
    <SqliPattern union_after_quote union_based>
    """

    name: str
    category: str
    regex: str
    description: str
    example: str

    @property
    def policy_id(self) -> str:
        return f"sqli_{self.category}"

    def __repr__(self) -> str:
        return f"<SqliPattern {self.name} {self.category}>"


# Shared fragments. Q: a quote that closes a string literal. ID: a table or column name.
_Q = "['\"]"
_ID = r"[\w.`\"\[\]]+"
_U = r"union(?:\s+(?:all|distinct))?\s+select\b"
_PRIVS = (
    r"(?:all(?:\s+privileges)?|select|insert|update|delete|execute|usage|alter|create"
    r"|drop|references|trigger|truncate|file|process|super)(?:\s*,\s*\w+)*"
)
_ROLES = r"(?:dba|sysadmin|db_owner|superuser|rds_superuser|pg_\w+)"
_SQLKW = "(?:union|select|insert|update|delete|drop|from|where|and|or|exec|sleep|order|values)"
_INFO = (
    r"(?:@@version|version\s*\(\s*\)|current_user|user\s*\(\s*\)|database\s*\(\s*\)"
    r"|db_name\s*\(\s*\))"
)


def _p(name: str, category: str, regex: str, description: str, example: str) -> SqliPattern:
    return SqliPattern(name, category, regex, description, example)


# One rule per block reads better than one argument per line, so the formatter skips the table.
# fmt: off
#: The pattern table, in category order. Each ``example`` is a prompt the pattern must catch.
SQLI_PATTERNS: tuple[SqliPattern, ...] = (
    # --- union_based: UNION SELECT in a payload shape, not any union query.
    _p("union_after_quote", "union_based",
       rf"['\")]\s*{_U}",
       "UNION SELECT right after a closing quote or bracket",
       "Look up order 5' UNION SELECT card_number FROM payments--"),
    _p("union_after_number", "union_based",
       rf"\b\d+\s+{_U}",
       "UNION SELECT appended to a numeric parameter",
       "Show product id=-1 UNION SELECT username, password FROM users"),
    _p("union_column_probe", "union_based",
       r"\bunion(?:\s+(?:all|distinct))?\s+select\s+(?:null|\d+)\s*(?:,|--|#|;|$|from\b)",
       "UNION SELECT probing the column count with NULLs or numbers",
       "try UNION ALL SELECT NULL,NULL,NULL"),
    _p("union_select_extract", "union_based",
       rf"\b{_U}[^;]*(?:{_INFO}|\b(?:group_concat|table_name|column_name|schema_name"
       r"|password|passwd|card_number|credit_card)\b)",
       "UNION SELECT pulling credentials, schema names or server details",
       "append union select group_concat(username) from accounts"),
    _p("order_by_probe", "union_based",
       r"['\")]\s*order\s+by\s+\d+\s*(?:--|#|/\*|;|$)",
       "ORDER BY <n> after a closing quote, probing the column count",
       "Sort results by name' ORDER BY 5--"),
    # --- boolean_blind: tautologies and true/false probes after a closing quote or number.
    _p("quoted_or_tautology", "boolean_blind",
       r"'\s*(?:or|\|\|)\s*'[^']*'\s*(?:=|like|<>|!=)\s*'",
       "a quoted OR tautology such as ' OR '1'='1",
       "Username: admin' OR '1'='1"),
    _p("dquoted_or_tautology", "boolean_blind",
       r"\"\s*(?:or|\|\|)\s*\"[^\"]*\"\s*(?:=|like|<>|!=)\s*\"",
       'a double-quoted OR tautology such as " OR "a"="a',
       'Search for: x" OR "a"="a'),
    _p("quote_or_numeric", "boolean_blind",
       rf"{_Q}\s*(?:\bor\b|\|\|)\s*['\"]?\d+['\"]?\s*(?:=|<>|!=|<|>|like)\s*['\"]?\d+",
       "OR <number> = <number> after a closing quote",
       "Login as admin' OR 1=1 please"),
    _p("bare_or_tautology", "boolean_blind",
       r"\bor\s+(?:1\s*=\s*1|0\s*=\s*0|2\s*=\s*2|1\s*<\s*2|1\s*<>\s*2)\b",
       "an always-true OR condition such as OR 1=1",
       "Filter the report where id = 5 or 1=1"),
    _p("and_numeric_probe", "boolean_blind",
       rf"(?:{_Q}|=\s*\d+)\s*and\s+['\"]?\d+['\"]?\s*(?:=|<>|!=|<|>)\s*['\"]?\d+",
       "AND <number> = <number> appended to a parameter (true/false probe)",
       "Open item?id=5 AND 1=2"),
    _p("blind_substring_probe", "boolean_blind",
       r"\b(?:and|or)\s+\(?\s*(?:(?:ascii|ord|unicode|substring|substr|mid|length|char_length)"
       rf"\s*\(\s*)+\(?\s*(?:select\b|{_INFO})",
       "a character-by-character probe such as AND ASCII(SUBSTRING((SELECT ...)))",
       "5 AND ASCII(SUBSTRING((SELECT password FROM users LIMIT 1),1,1))>64"),
    _p("quote_or_true_comment", "boolean_blind",
       rf"{_Q}\s*or\s+(?:true|1|not\s+0)\s*(?:--|#|;|$)",
       "' OR TRUE followed by a comment or the end of the input",
       "name' or true--"),
    _p("numeric_or_comparison", "boolean_blind",
       r"=\s*-?\d+\s*\)?\s+(?:or|\|\|)\s+(?:\d+\s*(?:=|<>|!=|<=|>=|<|>|like\b)\s*\d+"
       r"|true\b|not\s+(?:0|false)\b|\d+\s+between\s+\d+\s+and\s+\d+)",
       "a quote-free OR comparison appended to a numeric parameter, such as id=5 OR 2>1",
       "Open item?id=5 OR 2>1"),
    _p("quoted_concat_tautology", "boolean_blind",
       r"'\s*(?:or|\|\|)\s*'[^']*'\s*(?:\|\||\+)\s*'[^']*'\s*=\s*'",
       "an OR tautology built by string concatenation, such as ' OR 'a'||'b'='ab",
       "name x' OR 'a'||'b'='ab"),
    _p("quote_hex_comparison", "boolean_blind",
       r"['\"]\)*\s*(?:or|and|\|\||&&)\s+[\w.`]+\s*(?:=|<>|!=|<|>|like\b)\s*0x[0-9a-f]+\s*"
       r"(?:--|#|/\*|;|$)",
       "a comparison against a hex literal after a closing quote, then a comment: a login "
       "bypass without a tautology",
       "Username: admin' AND pass=0x70617373--"),
    # --- time_based: delay functions in SQL context (time.sleep(5) in Python is not SQL).
    _p("sleep_call", "time_based",
       r"(?:\b(?:and|or|xor|select|do|then|else|rlike)|['\"(,|])\s*sleep\s*\(\s*\d+(?:\.\d+)?"
       r"\s*\)",
       "a SLEEP(n) call inside a condition or SELECT",
       "Track parcel 12' AND SLEEP(5)--"),
    _p("sleep_comparison", "time_based",
       r"\b(?:and|or|xor)\s+['\"]?\w+['\"]?\s*(?:=|<>|!=|<|>)\s*sleep\s*\(\s*\d+",
       "a SLEEP(n) call compared inside a condition, such as AND 0=SLEEP(5)",
       "item 3' AND 0=SLEEP(5)-- -"),
    _p("heavy_blob", "time_based",
       r"\b(?:randomblob|zeroblob)\s*\(\s*\d{6,}",
       "SQLite's RANDOMBLOB/ZEROBLOB of millions of bytes: a delay without a sleep function",
       "id=1' AND 1=LIKE('ABC',UPPER(HEX(RANDOMBLOB(500000000/2))))--"),
    _p("get_lock_condition", "time_based",
       r"(?:\b(?:and|or|xor)|['\"(,|])\s*get_lock\s*\(\s*['\"][^'\"]*['\"]\s*,\s*\d+",
       "MySQL's GET_LOCK(name, seconds) inside a condition: a wait on a held lock",
       "order 7' AND GET_LOCK('lock1',10) AND 'a'='a"),
    _p("heavy_series", "time_based",
       r"\(\s*select\s+count\s*\(\s*\*\s*\)\s+from\s+generate_series\s*\(\s*\d+\s*,\s*\d{7,}",
       "a sub-select that counts millions of generated rows: a delay without a sleep function",
       "id=5 OR 1=(SELECT COUNT(*) FROM generate_series(1,50000000))"),
    _p("benchmark_call", "time_based",
       r"\bbenchmark\s*\(\s*\d+\s*,\s*\w",
       "a BENCHMARK(n, expr) busy loop",
       "1' AND BENCHMARK(500000,MD5('x'))--"),
    _p("waitfor_delay", "time_based",
       rf"\bwaitfor\s+(?:delay|time)\s+{_Q}",
       "a WAITFOR DELAY pause",
       "'; WAITFOR DELAY '0:0:5'--"),
    _p("pg_sleep", "time_based",
       r"\bpg_sleep(?:_for|_until)?\s*\(\s*['\d]",
       "a pg_sleep() pause",
       "1; SELECT pg_sleep(10)"),
    _p("dbms_lock_sleep", "time_based",
       r"\bdbms_(?:lock|session)\.sleep\s*\(\s*\d",
       "an Oracle DBMS_LOCK.SLEEP pause",
       "BEGIN DBMS_LOCK.SLEEP(5); END;"),
    _p("dbms_pipe_receive", "time_based",
       r"\bdbms_pipe\.receive_message\s*\(",
       "an Oracle DBMS_PIPE.RECEIVE_MESSAGE delay",
       "x' || DBMS_PIPE.RECEIVE_MESSAGE('a',10) --"),
    # --- error_based: functions abused to leak data through error messages.
    _p("extractvalue", "error_based",
       r"\bextractvalue\s*\(\s*[^,]*,\s*(?:concat|\(\s*select\b|0x)",
       "EXTRACTVALUE with a CONCAT or sub-select, leaking data in the XPath error",
       "1' AND EXTRACTVALUE(1,CONCAT(0x7e,(SELECT user())))--"),
    _p("updatexml", "error_based",
       r"\bupdatexml\s*\(\s*[^,]*,\s*(?:concat|\(\s*select\b|0x)",
       "UPDATEXML with a CONCAT or sub-select, leaking data in the XPath error",
       "1' AND UPDATEXML(1,CONCAT(0x7e,version()),1)--"),
    _p("convert_int", "error_based",
       r"\bconvert\s*\(\s*(?:int|integer|numeric)\s*,\s*(?:@@\w|\(\s*select\b|db_name\s*\("
       r"|user_name\s*\(|system_user|suser_name\s*\(|host_name\s*\()",
       "CONVERT(int, <server value>) forcing a conversion error",
       "1 AND 1=CONVERT(int,@@version)"),
    _p("cast_subselect", "error_based",
       r"\bcast\s*\(\s*(?:\(\s*select\s+[\w.@]+\s+from\s+\w+(?:\s+limit\s+\d+)?\s*\)"
       rf"|{_INFO})\s+as\s+(?:int|integer|numeric|bigint|signed)\b",
       "CAST of a sub-select or server value to a number, forcing a conversion error",
       "1 AND 1=CAST((SELECT password FROM users LIMIT 1) AS int)"),
    _p("pg_cast_version", "error_based",
       r"(?:\bversion\s*\(\s*\)|\bcurrent_user\b|\bcurrent_database\s*\(\s*\)|\bsession_user\b"
       r"|\(\s*select\s+[\w.]+\s+from\s+[^)]*\))\s*\)*\s*::\s*(?:int|integer|bigint|numeric)\b",
       "a ::int cast of version() or a sub-select, forcing a conversion error",
       "id=1 AND 7=version()::int"),
    _p("floor_rand_duplicate", "error_based",
       r"\bfloor\s*\(\s*rand\s*\(\s*0\s*\)\s*\*\s*2\s*\)",
       "FLOOR(RAND(0)*2), the duplicate-key error trick",
       "' AND (SELECT 1 FROM (SELECT COUNT(*),CONCAT(version(),FLOOR(RAND(0)*2))x "
       "FROM t GROUP BY x)a)--"),
    _p("exp_overflow", "error_based",
       r"\bexp\s*\(\s*~\s*\(",
       "EXP(~(...)), the overflow error trick",
       "1 AND EXP(~(SELECT * FROM (SELECT user())a))"),
    _p("oracle_error_functions", "error_based",
       r"\b(?:utl_inaddr\.get_host_(?:name|address)|ctxsys\.drithsx\.sn|dbms_xmlgen\.getxml)"
       r"\s*\(",
       "an Oracle function abused to leak data in its error message",
       "' AND 1=UTL_INADDR.GET_HOST_NAME((SELECT user FROM dual))--"),
    # --- stacked_queries: a second statement after ';'.
    _p("stacked_drop", "stacked_queries",
       r";\s*drop\s+(?:table|database|schema|view|index|user|login|procedure|function"
       r"|trigger)\b",
       "a DROP statement stacked after ';'",
       "Find ticket 42'; DROP TABLE tickets;--"),
    _p("stacked_delete", "stacked_queries",
       r";\s*delete\s+from\b",
       "a DELETE statement stacked after ';'",
       "user 7; DELETE FROM sessions WHERE 1=1"),
    _p("stacked_insert", "stacked_queries",
       r";\s*insert\s+into\b",
       "an INSERT statement stacked after ';'",
       "x'); INSERT INTO admins (name) VALUES ('eve')--"),
    _p("stacked_update", "stacked_queries",
       rf";\s*update\s+{_ID}\s+set\b",
       "an UPDATE statement stacked after ';'",
       "5; UPDATE accounts SET role='admin' WHERE name='eve'"),
    _p("stacked_exec", "stacked_queries",
       r";\s*exec(?:ute)?(?:\s+(?:master\.|sp_|xp_|@|immediate\b)|\s*\()",
       "an EXEC of a stored procedure stacked after ';'",
       "'; EXEC sp_configure 'show advanced options', 1--"),
    _p("stacked_shutdown", "stacked_queries",
       r";\s*shutdown\b\s*(?:with\s+nowait\b|--|#|;|$)",
       "a SHUTDOWN stacked after ';'",
       "1'; SHUTDOWN WITH NOWAIT--"),
    _p("stacked_select", "stacked_queries",
       r"['\")]\s*;\s*select\b",
       "a SELECT stacked after a closing quote and ';'",
       "name'; SELECT * FROM users--"),
    _p("stacked_ddl", "stacked_queries",
       r";\s*(?:create|alter|truncate|rename)\s+(?:table|user|login|role|database|procedure"
       r"|function|trigger)\b",
       "a CREATE/ALTER/TRUNCATE statement stacked after ';'",
       "x'; TRUNCATE TABLE invoices--"),
    # --- comment_injection: comments that cut off the rest of the query or hide keywords.
    _p("quote_dash_comment", "comment_injection",
       # The comment must end the token ("admin'--", "x' -- -"), so a string of dashes in
       # code, print("-----"), or a regex such as r'--\s*>' is not mistaken for one.
       r"\w['\"]\)*;?--(?:[\t\n\r +-]|$)|['\"]\)*\s*;?\s*--(?:[\t ]+-|\+)?\s*$",
       "a closing quote followed by a -- comment",
       "Log me in as admin'--"),
    _p("quote_hash_comment", "comment_injection",
       r"\w['\"]#(?:[\t\n\r ]|$)|['\"]\)*#\s*$",
       "a closing quote followed by a # comment",
       "Sign in as admin'#"),
    _p("keyword_comment_split", "comment_injection",
       rf"\b{_SQLKW}/\*[^*\n]*\*+/",
       "an inline comment glued to an SQL keyword (UNION/**/SELECT)",
       "1 UNION/**/SELECT 1,2"),
    _p("versioned_comment", "comment_injection",
       rf"/\*!\d*\s*{_SQLKW}\b",
       "an SQL keyword hidden in a MySQL /*!...*/ comment",
       "1 /*!50000UNION*/ /*!50000SELECT*/ 1,2"),
    _p("payload_tail_comment", "comment_injection",
       rf"(?:['\")]|\b\d+|\b0x[0-9a-f]+|\bnull|\bfrom\s+{_ID})(?:\s*--|#)(?:[\t ]+-|\+)?\s*$",
       "a -- or # comment closing the input after a quote, number or table name",
       "Open invoice?id=1 OR 1=1--"),
    # --- generic: file access, OS commands, obfuscation, fingerprinting.
    _p("xp_cmdshell", "generic",
       rf"\bxp_cmdshell\b\s*\(?\s*{_Q}|\bexec(?:ute)?\s+(?:master\.\w*\.)?xp_cmdshell\b",
       "xp_cmdshell running an operating-system command",
       "'; EXEC master..xp_cmdshell 'dir'--"),
    _p("load_file", "generic",
       rf"\bload_file\s*\(\s*(?:{_Q}|0x|char\s*\()",
       "LOAD_FILE reading a server file",
       "1 UNION SELECT LOAD_FILE('/etc/passwd')"),
    _p("into_outfile", "generic",
       rf"\binto\s+(?:out|dump)file\s*{_Q}",
       "INTO OUTFILE/DUMPFILE writing a server file",
       "' UNION SELECT 'x' INTO OUTFILE '/var/www/s.php'--"),
    _p("char_obfuscation", "generic",
       r"\bchar\s*\(\s*(?:\d+|0x[0-9a-f]+)\s*(?:,\s*(?:\d+|0x[0-9a-f]+)\s*)+\)",
       "CHAR(n, n, ...) spelling out a string to dodge filters",
       "WHERE name = CHAR(97,100,109,105,110)"),
    _p("chr_concat", "generic",
       r"\bchr\s*\(\s*\d+\s*\)\s*\|\|\s*chr\s*\(|\bchar\s*\(\s*\d+\s*\)\s*\+\s*char\s*\(",
       "CHR(n)||CHR(n) concatenation spelling out a string",
       "WHERE name = CHR(97)||CHR(100)||CHR(109)"),
    _p("char_quote", "generic",
       r"\b(?:char|chr)\s*\(\s*(?:39|34|0x27|0x22)\s*\)\s*(?:\+|\|\||,)",
       "CHAR(39) building a quote character and gluing it into a string",
       "SELECT * FROM t WHERE name = CHAR(39)+'admin'+CHAR(39)"),
    _p("concat_schema_dump", "generic",
       r"\b(?:group_concat|concat_ws|concat)\s*\([^)]*(?:\bselect\b|\btable_name\b"
       r"|\bcolumn_name\b|\bschema_name\b|@@version|\bpassword\b|0x7e|0x3a)",
       "CONCAT/GROUP_CONCAT gluing credentials or schema names together",
       "UNION SELECT GROUP_CONCAT(username,0x3a,password) FROM users"),
    _p("hex_literal_where", "generic",
       rf"\bwhere\s+{_ID}\s*(?:=|<>|!=|like|in\s*\()\s*0x[0-9a-f]{{6,}}\b",
       "a hex-encoded string literal in a WHERE clause",
       "SELECT * FROM users WHERE name = 0x61646d696e"),
    _p("version_variable_probe", "generic",
       r"(?:['\"(,+]|\|\|)\s*@@(?:version|datadir|hostname|servername|basedir|tmpdir)\b",
       "@@version or a similar server variable spliced into a value",
       "x' + @@version + '"),
    _p("sqlite_master_read", "generic",
       r"\bfrom\s+(?:main\.)?sqlite_(?:master|schema|temp_master)\b",
       "a read of SQLite's sqlite_master catalogue",
       "' UNION SELECT sql FROM sqlite_master--"),
    _p("pg_file_access", "generic",
       rf"\b(?:pg_read_file|pg_read_binary_file|pg_ls_dir|lo_import|lo_export)\s*\(\s*{_Q}"
       rf"|\bcopy\s+(?:\(\s*select\b[^;]*\)|{_ID})\s+(?:from|to)\s+program\s+{_Q}",
       "a PostgreSQL server-file read or COPY ... PROGRAM command",
       "'; COPY (SELECT '') TO PROGRAM 'id'--"),
    # --- dangerous_query: statements that destroy data or change privileges.
    _p("drop_table", "dangerous_query",
       r"\bdrop\s+table\b",
       "a DROP TABLE statement",
       "Write a SQL query: DROP TABLE users"),
    _p("drop_database", "dangerous_query",
       r"\bdrop\s+(?:database|schema)\b",
       "a DROP DATABASE statement",
       "DROP DATABASE production;"),
    _p("truncate_table", "dangerous_query",
       r"\btruncate\s+table\b",
       "a TRUNCATE TABLE statement",
       "TRUNCATE TABLE audit_log"),
    _p("alter_table", "dangerous_query",
       rf"\balter\s+table\s+(?:if\s+exists\s+)?(?:only\s+)?{_ID}\s+(?:add|drop|modify|alter"
       r"|rename|change|owner|disable|enable|set)\b",
       "an ALTER TABLE schema change",
       "ALTER TABLE users ADD COLUMN is_admin boolean"),
    _p("delete_without_where", "dangerous_query",
       rf"\bdelete\s+from\s+{_ID}\s*(?:;|--|#|\)|$)",
       "a DELETE FROM without a WHERE clause",
       "DELETE FROM customers;"),
    _p("delete_where_tautology", "dangerous_query",
       rf"\bdelete\s+from\s+{_ID}\s+where\s+(?:1\s*=\s*1\b|true\b|'1'\s*=\s*'1')",
       "a DELETE whose WHERE clause is always true",
       "DELETE FROM orders WHERE 1=1"),
    _p("grant_privileges", "dangerous_query",
       rf"\bgrant\s+{_PRIVS}\s+on\s+[^;]*\bto\s+\S|\bgrant\s+{_ROLES}\s+to\s+\S",
       "a GRANT ... TO privilege change",
       "GRANT ALL PRIVILEGES ON *.* TO 'eve'@'%'"),
    _p("revoke_privileges", "dangerous_query",
       rf"\brevoke\s+{_PRIVS}\s+on\s+[^;]*\bfrom\s+\S|\brevoke\s+{_ROLES}\s+from\s+\S",
       "a REVOKE ... FROM privilege change",
       "REVOKE SELECT ON payroll FROM analyst"),
    _p("create_user", "dangerous_query",
       r"\bcreate\s+(?:user|login|role)\s+(?:if\s+not\s+exists\s+)?['\"`]?[\w.%-]+['\"`]?"
       r"(?:@['\"`]?[\w.%-]+['\"`]?)?\s*(?:identified\b|with\s+(?:password|superuser|login"
       r"|encrypted|createdb|createrole)\b|password\b|superuser\b|(?:for|from)\s+login\b|;)",
       "a CREATE USER/LOGIN/ROLE statement",
       "CREATE USER 'backdoor'@'%' IDENTIFIED BY 'letmein'"),
)

# fmt: on

# Whitespace between tokens: ASCII space characters (incl. vertical tab), a /* */ comment, or
# the opening or closing of a MySQL /*!50000 ... */ comment, whose content MySQL executes.
_SPACE = r"(?:[\t\n\x0b\f\r ]|/\*[^*]*\*+(?:[^*/][^*]*\*+)*/|/\*!\d*|\*/)"


def widen_spaces(regex: str) -> str:
    """Widen ``\\s*``/``\\s+`` so inline comments count as whitespace; reject any other ``\\s``."""
    out = regex.replace(r"\s*", _SPACE + "*").replace(r"\s+", _SPACE + "+")
    if r"\s" in out:
        raise ValueError(f"pattern {regex!r}: use \\s only as \\s* or \\s+")
    return out
