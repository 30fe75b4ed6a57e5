-- Patient search in result order (see src/store/patient_search.rs): the name order with the MRN, so a broad
-- search walks the index and stops after a page of matches (the included columns let it read only the
-- index); and the first name followed by the name order, so the patients whose first name equals a token
-- come in result order too.
DROP INDEX patients_last_first;
DROP INDEX patients_first;
CREATE INDEX patients_name_order ON patients (lower(last_name), lower(first_name), mrn)
    INCLUDE (id, first_name, last_name);
CREATE INDEX patients_first ON patients (lower(first_name), lower(last_name), mrn)
    INCLUDE (id, first_name, last_name);
