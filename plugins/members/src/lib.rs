//! `members`: one record per member, a user's connection to an institution (MX members).

use ferry_pdk::prelude::*;

struct Members;

impl Resource for Members {
    fn describe() -> Describe {
        Describe::new("members", env!("CARGO_PKG_VERSION"))
            .about("a user's connections to institutions (MX members)")
            .field("guid", Type::String)
            .key("guid")
            .created("created_at")
            .reference("user_guid", "users", "guid")
            .field("id", Type::String.or_null())
            .field("user_guid", Type::String)
            .field("institution_code", Type::String)
            .field("connection_status", Type::String)
            .field("name", Type::String)
            .field("is_being_aggregated", Type::Boolean)
            .field("is_manual", Type::Boolean)
            .field("is_oauth", Type::Boolean)
            .field("aggregated_at", Type::TimestampMicros.or_null())
            .field("successfully_aggregated_at", Type::TimestampMicros.or_null())
            .field("metadata", Type::String.or_null())
            .field("created_at", Type::TimestampMicros)
            .field("updated_at", Type::TimestampMicros)
    }

    fn export(cx: &mut Export) -> Result<()> {
        cx.copy_table()
    }
}

export_resource!(Members);
