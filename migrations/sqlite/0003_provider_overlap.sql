-- Overlapping bookings of one provider (09:00 for 60 minutes, then 09:30) are refused by the database,
-- as exact double bookings are by `appointments_active_slot`. SQLite has no exclusion constraints: a
-- trigger on insert and on update refuses a slot-holding row whose minutes [slot, slot + duration)
-- overlap another slot-holding row of the same provider and date. SQLite serialises writers, so the check
-- and the write cannot interleave. The message is the constraint name the store maps to `Conflict`.
-- A row whose appointment_id is already stored is left to the unique key (a merge import skips it with
-- ON CONFLICT DO NOTHING; BEFORE triggers run before that conflict is resolved).
CREATE TRIGGER appointments_provider_overlap_insert
BEFORE INSERT ON appointments
WHEN NEW.status IN ('scheduled', 'confirmed', 'checked_in')
BEGIN
    SELECT RAISE(ABORT, 'appointments_provider_overlap')
    WHERE NOT EXISTS (SELECT 1 FROM appointments WHERE appointment_id = NEW.appointment_id)
      AND EXISTS (
        SELECT 1 FROM appointments AS a
        WHERE a.provider_id = NEW.provider_id
          AND a.appointment_date = NEW.appointment_date
          AND a.status IN ('scheduled', 'confirmed', 'checked_in')
          AND CAST(substr(a.slot_time, 1, 2) AS INTEGER) * 60 + CAST(substr(a.slot_time, 4, 2) AS INTEGER)
              < CAST(substr(NEW.slot_time, 1, 2) AS INTEGER) * 60 + CAST(substr(NEW.slot_time, 4, 2) AS INTEGER)
                + max(NEW.duration_minutes, 1)
          AND CAST(substr(NEW.slot_time, 1, 2) AS INTEGER) * 60 + CAST(substr(NEW.slot_time, 4, 2) AS INTEGER)
              < CAST(substr(a.slot_time, 1, 2) AS INTEGER) * 60 + CAST(substr(a.slot_time, 4, 2) AS INTEGER)
                + max(a.duration_minutes, 1)
    );
END;

CREATE TRIGGER appointments_provider_overlap_update
BEFORE UPDATE OF provider_id, appointment_date, slot_time, duration_minutes, status ON appointments
WHEN NEW.status IN ('scheduled', 'confirmed', 'checked_in')
BEGIN
    SELECT RAISE(ABORT, 'appointments_provider_overlap')
    WHERE EXISTS (
        SELECT 1 FROM appointments AS a
        WHERE a.id <> NEW.id
          AND a.provider_id = NEW.provider_id
          AND a.appointment_date = NEW.appointment_date
          AND a.status IN ('scheduled', 'confirmed', 'checked_in')
          AND CAST(substr(a.slot_time, 1, 2) AS INTEGER) * 60 + CAST(substr(a.slot_time, 4, 2) AS INTEGER)
              < CAST(substr(NEW.slot_time, 1, 2) AS INTEGER) * 60 + CAST(substr(NEW.slot_time, 4, 2) AS INTEGER)
                + max(NEW.duration_minutes, 1)
          AND CAST(substr(NEW.slot_time, 1, 2) AS INTEGER) * 60 + CAST(substr(NEW.slot_time, 4, 2) AS INTEGER)
              < CAST(substr(a.slot_time, 1, 2) AS INTEGER) * 60 + CAST(substr(a.slot_time, 4, 2) AS INTEGER)
                + max(a.duration_minutes, 1)
    );
END;
