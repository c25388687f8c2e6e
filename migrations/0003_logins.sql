-- Every sign-in at the intranet, by the random login id its session carries, so that a
-- sign-out or the provider's back-channel logout (by sid or sub) ends it whichever session
-- store holds it: an ended login's cookie, however copied, no longer signs anyone in.

CREATE TABLE logins (
    login_id    TEXT    PRIMARY KEY,
    subject     TEXT    NOT NULL,
    sid         TEXT,               -- the provider's session (the ID token's sid), if it sent one
    started_at  INTEGER NOT NULL,   -- Unix seconds
    expires_at  INTEGER NOT NULL,   -- started_at + SESSION_LIFETIME_SECS
    ended_at    INTEGER,            -- set by sign-out or back-channel logout
    id_token    TEXT                -- for id_token_hint at sign-out; dropped when the login ends
);
CREATE INDEX logins_by_sid ON logins (sid) WHERE sid IS NOT NULL;
CREATE INDEX logins_by_subject ON logins (subject);
CREATE INDEX logins_by_ended ON logins (ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX logins_by_expiry ON logins (expires_at);

-- Sessions from before this database existed are not honoured: were the file lost and
-- recreated, its record of ended logins would be lost with it.
CREATE TABLE meta (
    key   TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO meta (key, value) VALUES ('logins_since', CAST(strftime('%s', 'now') AS INTEGER));
