//! `devices`: one record per device a user signed in from (MX devices; MX publishes no
//! field list, so these are the platform's own columns).

use ferry_pdk::prelude::*;

struct Devices;

impl Resource for Devices {
    fn describe() -> Describe {
        Describe::new("devices", env!("CARGO_PKG_VERSION"))
            .about("devices users signed in from (MX devices)")
            .field("guid", Type::String)
            .key("guid")
            .created("created_at")
            .reference("user_guid", "users", "guid")
            .field("user_guid", Type::String)
            .field("device_type", Type::String)
            .field("os", Type::String)
            .field("os_version", Type::String.or_null())
            .field("app_version", Type::String.or_null())
            .field("push_enabled", Type::Boolean)
            .field("last_seen_at", Type::TimestampMicros.or_null())
            .field("created_at", Type::TimestampMicros)
            .field("updated_at", Type::TimestampMicros)
    }

    fn export(cx: &mut Export) -> Result<()> {
        cx.copy_table()
    }
}

export_resource!(Devices);
