-- The intranet's demo data and its audit trail.

CREATE TABLE customers (
    id              INTEGER PRIMARY KEY,
    company         TEXT    NOT NULL,
    contact         TEXT    NOT NULL,
    region          TEXT    NOT NULL,
    open_orders     INTEGER NOT NULL CHECK (open_orders >= 0),
    account_manager TEXT    NOT NULL
);

CREATE TABLE employees (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    title       TEXT    NOT NULL,
    department  TEXT    NOT NULL,
    manager_id  INTEGER REFERENCES employees (id)
);

CREATE TABLE salaries (
    id              INTEGER PRIMARY KEY,
    employee_id     INTEGER NOT NULL REFERENCES employees (id),
    effective_date  TEXT    NOT NULL,  -- ISO 8601 date
    amount          INTEGER NOT NULL CHECK (amount > 0),  -- annual, whole currency units
    currency        TEXT    NOT NULL   -- ISO 4217
);
CREATE INDEX salaries_by_employee ON salaries (employee_id, effective_date);

-- One row per security-relevant event. Never a token, code or secret.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,  -- Unix seconds
    subject     TEXT,              -- the user's sub, when known
    event       TEXT    NOT NULL,
    request_id  TEXT,
    client_addr TEXT,
    detail      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_subject ON audit_log (subject, id);
CREATE INDEX audit_by_event ON audit_log (event, id);
