//! `goals`: one record per savings or payoff goal (MX goals).

use ferry_pdk::prelude::*;

const MONEY: Type = Type::Decimal { precision: 14, scale: 2 };

struct Goals;

impl Resource for Goals {
    fn describe() -> Describe {
        Describe::new("goals", env!("CARGO_PKG_VERSION"))
            .about("users' savings and payoff goals (MX goals)")
            .field("guid", Type::String)
            .key("guid")
            .created("created_at")
            .reference("user_guid", "users", "guid")
            .reference("account_guid", "accounts", "guid")
            .field("user_guid", Type::String)
            .field("account_guid", Type::String.or_null())
            .field("name", Type::String)
            .field("goal_type_name", Type::String)
            .field("meta_type_name", Type::String.or_null())
            .field("amount", MONEY)
            .field("current_amount", MONEY)
            .field("position", Type::Int)
            .field("is_complete", Type::Boolean)
            .field("completed_at", Type::TimestampMicros.or_null())
            .field("targeted_to_complete_at", Type::TimestampMicros.or_null())
            .field("created_at", Type::TimestampMicros)
            .field("updated_at", Type::TimestampMicros)
    }

    fn export(cx: &mut Export) -> Result<()> {
        cx.copy_table()
    }
}

export_resource!(Goals);
