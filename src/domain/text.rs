//! Free text a person typed (names, reasons, notes): [`Text<MAX>`] is trimmed, non-empty, at most `MAX`
//! characters, and holds no control character other than tab, line feed and carriage return (no engine
//! stores NUL alike; escapes in clinical text are never intended). Tool arguments and the import parse
//! into it, so one rule serves both.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::DomainError;

/// Text of 1 to `MAX` characters after trimming, without control characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Text<const MAX: usize>(String);

impl<const MAX: usize> Text<MAX> {
    pub fn parse(field: &str, raw: &str) -> Result<Self, DomainError> {
        check(raw, MAX)
            .map(|text| Self(text.to_owned()))
            .map_err(|rule| DomainError::new(field, rule))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The bounds of the records' text fields, one alias per kind of field: tool arguments and the import
/// both parse into these, so a field has one rule wherever it enters.
pub mod field {
    use super::Text;

    /// A code or short form: ZIP code.
    pub type Code = Text<20>;
    /// A short word: state, route.
    pub type Short = Text<50>;
    /// A name or short phrase: first and last name, city, policy and group number, relationship,
    /// dosage, frequency, appointment type, specialty, department.
    pub type Name = Text<100>;
    /// A longer name: street, insurer, contact name, allergen, test, drug, prescriber, location,
    /// provider name, who recorded or ordered.
    pub type Label = Text<200>;
    /// Why: an appointment's reason, an allergy's reaction.
    pub type Reason = Text<500>;
    /// Free notes.
    pub type Note = Text<1000>;
}

/// The rule of [`Text`] with the bound as a value: the trimmed text, or what is wrong with it.
pub fn check(raw: &str, max: usize) -> Result<&str, String> {
    let text = raw.trim();
    if text.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if text.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if has_control_character(text) {
        return Err("contains a control character (NUL, escape, …)".to_owned());
    }
    Ok(text)
}

/// Whether `text` holds a control character other than tab, line feed or carriage return.
pub fn has_control_character(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

/// Defines a checked text type over [`Text`]: `parse(field, raw)`, `into_string`, serde as text.
macro_rules! checked_text {
    ($(#[$meta:meta])* $name:ident, $max:literal, $rule:literal, $valid:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(Text<$max>);

        impl $name {
            pub fn parse(field: &str, raw: &str) -> Result<Self, DomainError> {
                let text = Text::<$max>::parse(field, raw)?;
                let valid: fn(&str) -> bool = $valid;
                if valid(text.as_str()) {
                    Ok(Self(text))
                } else {
                    Err(DomainError::new(field, $rule))
                }
            }

            pub fn into_string(self) -> String {
                self.0.into_string()
            }
        }

        impl From<$name> for String {
            fn from(text: $name) -> Self {
                text.into_string()
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::parse("", &raw).map_err(|error| serde::de::Error::custom(error.rule))
            }
        }
    };
}

checked_text!(
    /// An e-mail address, loosely: one `@`, a dot in the domain, no spaces, at most 254 characters.
    Email,
    254,
    "expected an e-mail address such as name@example.org",
    |text| {
        text.split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
            && !text.contains(char::is_whitespace)
    }
);

checked_text!(
    /// A phone number: digits with optional `+ - ( ) .` and spaces, 7-32 characters.
    Phone,
    32,
    "expected a phone number such as +1-555-0101",
    |text| {
        text.chars().filter(char::is_ascii_digit).count() >= 7
            && text.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c))
    }
);

impl<const MAX: usize> From<Text<MAX>> for String {
    fn from(text: Text<MAX>) -> Self {
        text.0
    }
}

impl<const MAX: usize> fmt::Display for Text<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Free text may hold PHI: its `Debug` shows only the length.
impl<const MAX: usize> fmt::Debug for Text<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Text({} chars)", self.0.chars().count())
    }
}

impl<const MAX: usize> Serialize for Text<MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for Text<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        // The rule only: the caller names the field.
        check(&raw, MAX)
            .map(|text| Self(text.to_owned()))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_bounded_and_printable() {
        assert_eq!(
            Text::<5>::parse("reason", " flu ").map(Text::into_string),
            Ok("flu".to_owned())
        );
        assert!(Text::<5>::parse("reason", "   ").is_err());
        assert!(Text::<5>::parse("reason", "influenza").is_err());
        assert!(Text::<50>::parse("reason", "a\u{0}b").is_err());
        assert!(Text::<50>::parse("reason", "line\nnext\ttab").is_ok());
        assert_eq!(
            format!("{:?}", Text::<50>::parse("name", "Jane").ok()),
            "Some(Text(4 chars))"
        );
    }
}
