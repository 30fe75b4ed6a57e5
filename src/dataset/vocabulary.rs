//! Word lists for generated records, modelled on the earlier system's data (names, places, insurers,
//! specialties, medications, allergens, lab panels). Realistic, invented, never real people.

pub const MALE_FIRST_NAMES: &[&str] = &[
    "James", "John", "Robert", "Michael", "William", "David", "Richard", "Joseph", "Thomas",
    "Charles", "Daniel", "Matthew", "Anthony", "Mark", "Steven", "Paul", "Andrew", "Joshua",
    "Kevin", "Brian", "George", "Timothy", "Ronald", "Jason", "Edward", "Jeffrey", "Ryan", "Jacob",
    "Gary", "Nicholas", "Eric", "Jonathan", "Stephen", "Larry", "Justin", "Scott", "Brandon",
    "Benjamin", "Samuel", "Gregory", "Alexander", "Patrick", "Frank", "Raymond", "Jack", "Dennis",
    "Jerry", "Tyler", "Aaron", "Jose", "Adam", "Nathan", "Henry", "Zachary", "Douglas", "Peter",
    "Kyle", "Mohammed", "Ahmed", "Omar", "Hiroshi", "Wei", "Raj", "Carlos", "Luis", "Diego",
    "Ivan", "Kwame",
];

pub const FEMALE_FIRST_NAMES: &[&str] = &[
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah",
    "Karen", "Lisa", "Nancy", "Betty", "Sandra", "Margaret", "Ashley", "Kimberly", "Emily",
    "Donna", "Michelle", "Carol", "Amanda", "Melissa", "Deborah", "Stephanie", "Dorothy",
    "Rebecca", "Sharon", "Laura", "Cynthia", "Amy", "Kathleen", "Angela", "Shirley", "Brenda",
    "Emma", "Anna", "Pamela", "Nicole", "Samantha", "Katherine", "Christine", "Helen", "Debra",
    "Rachel", "Carolyn", "Janet", "Maria", "Catherine", "Heather", "Diane", "Olivia", "Julie",
    "Joyce", "Victoria", "Grace", "Fatima", "Aisha", "Yuki", "Mei", "Priya", "Sofia", "Lucia",
    "Ingrid", "Amara", "Leila",
];

pub const LAST_NAMES: &[&str] = &[
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott",
    "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera",
    "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz",
    "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy",
    "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey", "Reed",
    "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson", "Brooks", "Chavez",
    "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price", "Alvarez",
    "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez", "Al-Rashid",
    "Hassan", "Abdullah", "Chen", "Wang", "Zhang", "Tanaka", "Sato", "Kowalski", "O'Brien",
    "Okafor", "Mensah", "Goldstein", "Cohen", "Rossi", "Silva", "Bergman", "Haddad", "Singh",
    "Reddy",
];

/// City, state, ZIP code.
pub const PLACES: &[(&str, &str, &str)] = &[
    ("Boston", "MA", "02101"), ("Cambridge", "MA", "02139"), ("Worcester", "MA", "01608"),
    ("New York", "NY", "10001"), ("Brooklyn", "NY", "11201"), ("Jersey City", "NJ", "07302"),
    ("Philadelphia", "PA", "19103"), ("Pittsburgh", "PA", "15213"), ("Baltimore", "MD", "21201"),
    ("Chicago", "IL", "60601"), ("Dearborn", "MI", "48126"), ("Detroit", "MI", "48201"),
    ("Columbus", "OH", "43215"), ("Atlanta", "GA", "30303"), ("Miami", "FL", "33101"),
    ("Houston", "TX", "77002"), ("Austin", "TX", "78701"), ("Denver", "CO", "80202"),
    ("Phoenix", "AZ", "85004"), ("Seattle", "WA", "98101"), ("Portland", "OR", "97201"),
    ("San Francisco", "CA", "94102"), ("Los Angeles", "CA", "90012"), ("San Diego", "CA", "92101"),
    ("Minneapolis", "MN", "55401"), ("Nashville", "TN", "37201"), ("Raleigh", "NC", "27601"),
];

pub const STREET_NAMES: &[&str] = &[
    "Main", "Oak", "Maple", "Cedar", "Pine", "Elm", "Washington", "Lake", "Hill", "Park", "Walnut",
    "Sunset", "Highland", "River", "Church", "Spring", "Chestnut", "Franklin", "Lincoln",
];

pub const STREET_SUFFIXES: &[&str] = &[
    "St", "Ave", "Street", "Lane", "Drive", "Road", "Blvd", "Court",
];

/// Insurer and the prefix of its policy numbers.
pub const INSURERS: &[(&str, &str)] = &[
    ("Blue Cross Blue Shield", "BCBS"), ("Aetna", "AET"), ("UnitedHealthcare", "UHC"),
    ("Cigna", "CIG"), ("Humana", "HUM"), ("Kaiser Permanente", "KP"), ("Medicare", "MCR"),
    ("Medicaid", "MCD"),
];

pub const RELATIONSHIPS: &[&str] = &["Spouse", "Parent", "Sibling", "Child", "Partner", "Friend"];

/// Specialty and department, as in the earlier system's provider list.
pub const SPECIALTIES: &[(&str, &str)] = &[
    ("Internal Medicine", "Primary Care"), ("Family Medicine", "Primary Care"),
    ("Radiology", "Imaging"), ("Allergy & Immunology", "Allergy"),
    ("Anesthesiology", "Anesthesia"), ("Rheumatology", "Autoimmune Disorders"),
    ("Hematology", "Blood Disorders"), ("Medical Oncology", "Cancer Center"),
    ("Cardiology", "Cardiovascular"), ("Interventional Cardiology", "Cardiovascular"),
    ("Pediatrics", "Children's Health"), ("Endocrinology", "Diabetes & Metabolism"),
    ("Gastroenterology", "Digestive Health"), ("Dermatology", "Skin Care"),
    ("Neurology", "Neurosciences"), ("Orthopedic Surgery", "Orthopedics"),
    ("Obstetrics & Gynecology", "Women's Health"), ("Psychiatry", "Behavioral Health"),
    ("Pulmonology", "Respiratory Care"), ("Nephrology", "Kidney Care"), ("Urology", "Urology"),
    ("Infectious Disease", "Infectious Disease"), ("Geriatrics", "Senior Care"),
];

pub const APPOINTMENT_TYPES: &[(&str, i64)] = &[
    ("Office Visit", 30), ("Follow-up", 30), ("Consultation", 45), ("Annual Physical", 45),
    ("New Patient", 60), ("Telehealth", 20), ("Procedure", 60), ("Lab Review", 15),
];

pub const VISIT_REASONS: &[&str] = &[
    "Annual wellness visit", "Blood pressure check", "Diabetes management follow-up",
    "Medication review", "Back pain", "Chest pain evaluation", "Headache", "Fatigue",
    "Prescription refill", "Preventive care", "Asthma follow-up", "Anxiety/Depression",
    "Skin rash", "Joint pain", "Cough and congestion", "Post-operative check", "Abdominal pain",
];

/// Name, dosage, frequency, route.
pub const MEDICATIONS: &[(&str, &str, &str, &str)] = &[
    ("Lisinopril", "10mg", "Once daily", "Oral"), ("Metformin", "500mg", "Twice daily", "Oral"),
    ("Atorvastatin", "20mg", "Once daily at bedtime", "Oral"),
    ("Aspirin", "81mg", "Once daily", "Oral"), ("Amlodipine", "5mg", "Once daily", "Oral"),
    ("Levothyroxine", "50mcg", "Once daily", "Oral"),
    ("Omeprazole", "20mg", "Once daily before breakfast", "Oral"),
    (
        "Albuterol",
        "90mcg",
        "Every 4-6 hours as needed",
        "Inhalation",
    ),
    ("Sertraline", "50mg", "Once daily", "Oral"),
    ("Gabapentin", "300mg", "Three times daily", "Oral"),
    ("Losartan", "50mg", "Once daily", "Oral"),
    ("Hydrochlorothiazide", "25mg", "Once daily", "Oral"),
    (
        "Insulin glargine",
        "20 units",
        "Once daily at bedtime",
        "Subcutaneous",
    ),
    ("Fluticasone", "50mcg", "Two sprays daily", "Nasal"),
    ("Ibuprofen", "400mg", "Every 6 hours as needed", "Oral"),
    ("Montelukast", "10mg", "Once daily", "Oral"),
    ("Warfarin", "5mg", "Once daily", "Oral"),
];

pub const MEDICATION_NOTES: &[&str] = &[
    "Take with food", "Monitor blood pressure", "For Heart health", "Check kidney function yearly",
    "Avoid grapefruit", "Take in the morning",
];

/// Allergen, reaction.
pub const ALLERGENS: &[(&str, &str)] = &[
    ("Penicillin", "Hives, difficulty breathing"), ("Peanuts", "Anaphylaxis"),
    ("Sulfa drugs", "Rash"), ("Latex", "Contact dermatitis"), ("Shellfish", "Swelling, hives"),
    ("Eggs", "Hives, digestive issues"), ("Dairy", "Digestive issues"), ("Bee stings", "Swelling"),
    ("Codeine", "Nausea, vomiting"), ("Iodine contrast", "Hives"),
    ("Pollen", "Sneezing, itchy eyes"), ("Aspirin", "Stomach upset"),
];

pub const VITALS_RECORDERS: &[&str] = &[
    "Nurse John Jones", "RN Williams", "MA Johnson", "Nurse Jones", "RN Patel", "MA Garcia",
];

/// A lab panel: test name and components (name, unit, reference low, reference high, decimals).
pub type LabPanel = (
    &'static str,
    &'static [(&'static str, &'static str, f64, f64, usize)],
);

pub const LAB_PANELS: &[LabPanel] = &[
    (
        "Complete Blood Count (CBC)",
        &[
            ("WBC", "K/uL", 4.5, 11.0, 1), ("RBC", "M/uL", 4.5, 5.9, 1),
            ("Hemoglobin", "g/dL", 13.5, 17.5, 1), ("Platelets", "K/uL", 150.0, 400.0, 0),
        ],
    ),
    (
        "Basic Metabolic Panel",
        &[
            ("Glucose", "mg/dL", 70.0, 99.0, 0), ("Sodium", "mmol/L", 136.0, 145.0, 0),
            ("Potassium", "mmol/L", 3.5, 5.1, 1), ("Creatinine", "mg/dL", 0.7, 1.3, 2),
        ],
    ),
    (
        "Lipid Panel",
        &[
            ("Total Cholesterol", "mg/dL", 125.0, 200.0, 1), ("LDL", "mg/dL", 50.0, 100.0, 1),
            ("HDL", "mg/dL", 40.0, 80.0, 1), ("Triglycerides", "mg/dL", 50.0, 150.0, 1),
        ],
    ),
    ("Hemoglobin A1C", &[("HbA1c", "%", 4.0, 5.7, 1)]),
    (
        "Thyroid Stimulating Hormone (TSH)",
        &[("TSH", "mIU/L", 0.4, 4.0, 2)],
    ),
    (
        "Vitamin D, 25-Hydroxy",
        &[("Vitamin D", "ng/mL", 30.0, 100.0, 1)],
    ),
];
