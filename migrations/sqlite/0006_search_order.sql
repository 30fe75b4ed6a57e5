-- Patient search in result order (see src/store/patient_search.rs): the name order with the MRN, so a broad
-- search walks the index and stops after a page of matches, reading only the index; and the first name
-- followed by the name order, so the patients whose first name equals a token come in result order too.
DROP INDEX patients_last_first;
DROP INDEX patients_first;
CREATE INDEX patients_name_order ON patients (last_name COLLATE NOCASE, first_name COLLATE NOCASE, mrn);
CREATE INDEX patients_first ON patients (first_name COLLATE NOCASE, last_name COLLATE NOCASE, mrn);
