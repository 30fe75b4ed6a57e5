-- Overlapping bookings of one provider (09:00 for 60 minutes, then 09:30) are refused by the database,
-- as exact double bookings are by `appointments_active_slot`: an exclusion constraint over the booked
-- minutes of the day [slot, slot + duration) per provider and date, for slot-holding statuses only.
-- `slot_time` is always `HH:MM` (24-hour), written by the store from the parsed time.
CREATE EXTENSION IF NOT EXISTS btree_gist;

ALTER TABLE appointments ADD CONSTRAINT appointments_provider_overlap EXCLUDE USING gist (
    provider_id WITH =,
    appointment_date WITH =,
    int4range(
        substr(slot_time, 1, 2)::int * 60 + substr(slot_time, 4, 2)::int,
        substr(slot_time, 1, 2)::int * 60 + substr(slot_time, 4, 2)::int + greatest(duration_minutes, 1)::int
    ) WITH &&
) WHERE (status IN ('scheduled', 'confirmed', 'checked_in'));
