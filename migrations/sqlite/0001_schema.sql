-- Initial schema (SQLite). Mirrors migrations/postgres/0001_schema.sql; a test compares the two.
-- Dates are ISO-8601 TEXT (YYYY-MM-DD, timestamps YYYY-MM-DDTHH:MM:SS[.ffffff]) in both engines.

CREATE TABLE providers (
    id                     INTEGER PRIMARY KEY,
    npi                    TEXT    NOT NULL UNIQUE,
    name                   TEXT    NOT NULL,
    specialty              TEXT,
    department             TEXT,
    phone                  TEXT,
    email                  TEXT,
    accepting_new_patients BOOLEAN NOT NULL DEFAULT TRUE,
    created_at             TEXT    NOT NULL,
    updated_at             TEXT    NOT NULL
);
CREATE INDEX providers_name ON providers (name COLLATE NOCASE);
CREATE INDEX providers_specialty ON providers (specialty COLLATE NOCASE);
CREATE INDEX providers_department ON providers (department COLLATE NOCASE);

CREATE TABLE patients (
    id                             INTEGER PRIMARY KEY,
    mrn                            TEXT NOT NULL UNIQUE,
    first_name                     TEXT NOT NULL,
    last_name                      TEXT NOT NULL,
    dob                            TEXT NOT NULL,
    gender                         TEXT,
    ssn                            TEXT,
    email                          TEXT,
    phone                          TEXT,
    street                         TEXT,
    city                           TEXT,
    state                          TEXT,
    zip_code                       TEXT,
    insurance_provider             TEXT,
    policy_number                  TEXT,
    group_number                   TEXT,
    emergency_contact_name         TEXT,
    emergency_contact_relationship TEXT,
    emergency_contact_phone        TEXT,
    created_at                     TEXT NOT NULL,
    updated_at                     TEXT NOT NULL
);
CREATE INDEX patients_dob ON patients (dob);
CREATE INDEX patients_last_first ON patients (last_name COLLATE NOCASE, first_name COLLATE NOCASE);
CREATE INDEX patients_first ON patients (first_name COLLATE NOCASE);

-- Substring search on names and MRN: an FTS5 trigram index over the patients table (external content).
CREATE VIRTUAL TABLE patients_search USING fts5 (
    first_name, last_name, mrn,
    content = 'patients', content_rowid = 'id', tokenize = 'trigram'
);
CREATE TRIGGER patients_search_insert AFTER INSERT ON patients BEGIN
    INSERT INTO patients_search (rowid, first_name, last_name, mrn)
    VALUES (new.id, new.first_name, new.last_name, new.mrn);
END;
CREATE TRIGGER patients_search_delete AFTER DELETE ON patients BEGIN
    INSERT INTO patients_search (patients_search, rowid, first_name, last_name, mrn)
    VALUES ('delete', old.id, old.first_name, old.last_name, old.mrn);
END;
CREATE TRIGGER patients_search_update AFTER UPDATE OF first_name, last_name, mrn ON patients BEGIN
    INSERT INTO patients_search (patients_search, rowid, first_name, last_name, mrn)
    VALUES ('delete', old.id, old.first_name, old.last_name, old.mrn);
    INSERT INTO patients_search (rowid, first_name, last_name, mrn)
    VALUES (new.id, new.first_name, new.last_name, new.mrn);
END;

CREATE TABLE appointments (
    id               INTEGER PRIMARY KEY,
    appointment_id   TEXT    NOT NULL UNIQUE,
    patient_id       INTEGER NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    provider_id      INTEGER NOT NULL REFERENCES providers (id) ON DELETE RESTRICT,
    appointment_date TEXT    NOT NULL,
    appointment_time TEXT    NOT NULL,
    slot_time        TEXT    NOT NULL,
    duration_minutes INTEGER NOT NULL DEFAULT 30,
    appointment_type TEXT,
    department       TEXT,
    location         TEXT,
    status           TEXT    NOT NULL,
    reason           TEXT,
    notes            TEXT,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL
);
CREATE INDEX appointments_patient ON appointments (patient_id, appointment_date, slot_time);
CREATE INDEX appointments_provider ON appointments (provider_id, appointment_date, slot_time);
-- One active booking per provider slot, enforced by the database (concurrent bookings race here).
CREATE UNIQUE INDEX appointments_active_slot ON appointments (provider_id, appointment_date, slot_time)
    WHERE status IN ('scheduled', 'confirmed', 'checked_in');

CREATE TABLE medications (
    id                INTEGER PRIMARY KEY,
    medication_id     TEXT    NOT NULL UNIQUE,
    patient_id        INTEGER NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    name              TEXT    NOT NULL,
    dosage            TEXT,
    frequency         TEXT,
    route             TEXT,
    prescribed_date   TEXT,
    prescriber        TEXT,
    status            TEXT    NOT NULL,
    refills_remaining INTEGER NOT NULL DEFAULT 0,
    notes             TEXT,
    created_at        TEXT    NOT NULL,
    updated_at        TEXT    NOT NULL
);
CREATE INDEX medications_patient ON medications (patient_id, status, prescribed_date);

CREATE TABLE allergies (
    id         INTEGER PRIMARY KEY,
    allergy_id TEXT    NOT NULL UNIQUE,
    patient_id INTEGER NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    allergen   TEXT    NOT NULL,
    reaction   TEXT,
    severity   TEXT    NOT NULL,
    onset_date TEXT,
    status     TEXT    NOT NULL,
    notes      TEXT,
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL
);
CREATE INDEX allergies_patient ON allergies (patient_id, status);

CREATE TABLE vital_signs (
    id                INTEGER PRIMARY KEY,
    vital_id          TEXT    NOT NULL UNIQUE,
    patient_id        INTEGER NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    recorded_date     TEXT    NOT NULL,
    systolic_bp       INTEGER,
    diastolic_bp      INTEGER,
    heart_rate        INTEGER,
    temperature       REAL,
    respiratory_rate  INTEGER,
    oxygen_saturation INTEGER,
    weight            REAL,
    height            REAL,
    bmi               REAL,
    recorded_by       TEXT,
    notes             TEXT,
    created_at        TEXT    NOT NULL
);
CREATE INDEX vital_signs_patient ON vital_signs (patient_id, recorded_date);

CREATE TABLE lab_results (
    id             INTEGER PRIMARY KEY,
    order_id       TEXT    NOT NULL UNIQUE,
    patient_id     INTEGER NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    test_name      TEXT    NOT NULL,
    ordered_date   TEXT,
    collected_date TEXT,
    resulted_date  TEXT,
    status         TEXT    NOT NULL,
    ordered_by     TEXT,
    results_json   TEXT,
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL
);
CREATE INDEX lab_results_patient ON lab_results (patient_id, ordered_date);

-- OAuth clients. secret_hash is "sha256-salted$<salt b64>$<hash b64>" or the earlier system's SHA-256 hex.
CREATE TABLE oauth_clients (
    id          INTEGER PRIMARY KEY,
    client_id   TEXT    NOT NULL UNIQUE,
    secret_hash TEXT    NOT NULL,
    app_id      TEXT    NOT NULL,
    app_name    TEXT    NOT NULL,
    role        TEXT    NOT NULL,
    scopes      TEXT    NOT NULL,
    is_active   BOOLEAN NOT NULL DEFAULT TRUE,
    rate_limit  INTEGER NOT NULL DEFAULT 1000,
    patient_mrn TEXT,
    jwks        TEXT,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);

-- Token signing keys (shared by every instance that uses this database).
CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    algorithm   TEXT NOT NULL,
    private_pem TEXT NOT NULL,
    public_jwk  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    retired_at  TEXT
);

-- Revoked access tokens, kept until they would have expired.
CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at TEXT NOT NULL
);
CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);

-- private_key_jwt assertion ids seen, to refuse replays until the assertion expires.
CREATE TABLE client_assertions (
    jti        TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX client_assertions_expiry ON client_assertions (expires_at);

-- Append-only, hash-chained audit log. seq is assigned by the single audit writer.
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    occurred_at TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    transport   TEXT NOT NULL,
    client_id   TEXT,
    app_id      TEXT,
    role        TEXT,
    action      TEXT NOT NULL,
    patient_mrn TEXT,
    outcome     TEXT NOT NULL,
    detail      TEXT,
    prev_hash   TEXT NOT NULL,
    row_hash    TEXT NOT NULL
);
CREATE INDEX audit_log_client ON audit_log (client_id, seq);
CREATE INDEX audit_log_patient ON audit_log (patient_mrn, seq);
CREATE INDEX audit_log_time ON audit_log (occurred_at);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
