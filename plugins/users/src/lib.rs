//! `users`: one record per platform user (MX Reporting's Users resource).

use ferry_pdk::prelude::*;

struct Users;

impl Resource for Users {
    fn describe() -> Describe {
        Describe::new("users", env!("CARGO_PKG_VERSION"))
            .about("platform users, one record per user (MX users)")
            .field("guid", Type::String)
            .key("guid")
            .created("created_at")
            .field("id", Type::String.or_null())
            .field("email", Type::String.or_null())
            .field("email_is_verified", Type::Boolean)
            .field("first_name", Type::String.or_null())
            .field("last_name", Type::String.or_null())
            .field("birthday", Type::String.or_null())
            .field("credit_score", Type::Int.or_null())
            .field("gender", Type::Int.or_null())
            .field("is_disabled", Type::Boolean)
            .field("logged_in_at", Type::TimestampMicros.or_null())
            .field("metadata", Type::String.or_null())
            .field("phone", Type::String.or_null())
            .field("phone_is_verified", Type::Boolean)
            .field("postal_code", Type::String.or_null())
            .field("revision", Type::Long)
            .field("created_at", Type::TimestampMicros)
            .field("updated_at", Type::TimestampMicros)
    }

    fn export(cx: &mut Export) -> Result<()> {
        cx.copy_table()
    }
}

export_resource!(Users);
