//! `notification_profiles`: one record per user's notification opt-outs (MX
//! notification profiles, shaped like Reporting's user-communications profile).

use ferry_pdk::prelude::*;

struct NotificationProfiles;

impl Resource for NotificationProfiles {
    fn describe() -> Describe {
        Describe::new("notification_profiles", env!("CARGO_PKG_VERSION"))
            .about("users' notification opt-outs (MX notification profiles)")
            .field("guid", Type::String)
            .key("guid")
            .created("created_at")
            .reference("user_guid", "users", "guid")
            .field("user_guid", Type::String)
            .field("opted_out_of_all_notifications", Type::Boolean)
            .field("opted_out_of_email_notifications", Type::Boolean)
            .field("opted_out_of_push_notifications", Type::Boolean)
            .field("opted_out_of_sms_notifications", Type::Boolean)
            .field("created_at", Type::TimestampMicros)
            .field("updated_at", Type::TimestampMicros)
    }

    fn export(cx: &mut Export) -> Result<()> {
        cx.copy_table()
    }
}

export_resource!(NotificationProfiles);
