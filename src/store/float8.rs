//! Binding an optional `f64` so PostgreSQL always sees `float8`, NULL or not.
//!
//! sqlx 0.9's `Any` driver turns a NULL `f64` into a NULL `float4` parameter (its `Real`/`Double` kinds are
//! swapped for NULLs). PostgreSQL statements are prepared once per connection with the parameter types of
//! their first execution, so after a reading without a temperature the next one with a temperature sent 8
//! bytes for a 4-byte parameter: "incorrect binary data format in bind parameter 7". [`Float8`] encodes NULL
//! as a NULL `f32`, which the same swap turns into a `float8` NULL. `tests/it/harden_postgres.rs` fails if a
//! sqlx upgrade changes either side.

use sqlx::any::{Any, AnyTypeInfo};
use sqlx::encode::{Encode, IsNull};
use sqlx::error::BoxDynError;

type ArgumentBuffer = <Any as sqlx::Database>::ArgumentBuffer;

/// An optional double-precision value to bind.
#[derive(Debug, Clone, Copy)]
pub struct Float8(pub Option<f64>);

impl sqlx::Type<Any> for Float8 {
    fn type_info() -> AnyTypeInfo {
        <f64 as sqlx::Type<Any>>::type_info()
    }
}

impl Encode<'_, Any> for Float8 {
    fn encode_by_ref(&self, buf: &mut ArgumentBuffer) -> Result<IsNull, BoxDynError> {
        match self.0 {
            Some(value) => <f64 as Encode<'_, Any>>::encode_by_ref(&value, buf),
            // A NULL `f32` reaches PostgreSQL as a float8 NULL (see the module doc).
            None => <Option<f32> as Encode<'_, Any>>::encode_by_ref(&None, buf),
        }
    }
}
