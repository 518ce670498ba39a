//! Outbound notifications (L-5, §10): the message for an SLA breach, rendered for a generic
//! JSON webhook or for the WeCom, DingTalk and Feishu group bots.

use crate::company::code_enum;
use serde::Serialize;
use serde_json::{Value, json};

code_enum!(
    /// Webhook body formats.
    Format {
        Generic => "generic",
        Wecom => "wecom",
        Dingtalk => "dingtalk",
        Feishu => "feishu",
    }
);

code_enum!(
    /// L-5 breach kinds.
    BreachKind { FirstResponse => "first_response", FollowUp => "follow_up" }
);

/// What an SLA breach notification says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreachNotice {
    pub breach_id: i64,
    pub kind: BreachKind,
    pub lead_id: i64,
    pub lead: String,
    pub grade: String,
    pub owner: String,
    pub team: String,
    /// Local time, e.g. `2026-11-23 17:00`.
    pub due: String,
    pub link: String,
}

impl BreachNotice {
    /// One human line (Chinese, as it goes to Chinese group chats).
    pub fn text(&self) -> String {
        let what = match self.kind {
            BreachKind::FirstResponse => "首次响应超时",
            BreachKind::FollowUp => "跟进超时",
        };
        format!(
            "【线索{what}】{}（{} 级）负责人 {}（{}），截止 {}。{}",
            self.lead, self.grade, self.owner, self.team, self.due, self.link
        )
    }

    /// The webhook body in `format`.
    pub fn body(&self, format: Format) -> Value {
        let text = self.text();
        match format {
            Format::Generic => json!({"event": "sla_breach", "breach": self}),
            Format::Wecom => json!({"msgtype": "markdown", "markdown": {"content": text}}),
            Format::Dingtalk => json!({"msgtype": "markdown", "markdown": {"title": "线索超时提醒", "text": text}}),
            Format::Feishu => json!({"msg_type": "text", "content": {"text": text}}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// L-5: the same notice in each bot's message shape.
    #[test]
    fn l5_bodies_per_format() {
        let n = BreachNotice {
            breach_id: 7,
            kind: BreachKind::FirstResponse,
            lead_id: 42,
            lead: "周杰 · 苏州精工".into(),
            grade: "A".into(),
            owner: "刘洋".into(),
            team: "销售一组".into(),
            due: "2026-11-23 17:00".into(),
            link: "http://127.0.0.1:8080/leads/42".into(),
        };
        assert_eq!(n.body(Format::Wecom)["msgtype"], "markdown");
        assert!(n.body(Format::Wecom)["markdown"]["content"].as_str().unwrap().contains("首次响应超时"));
        assert_eq!(n.body(Format::Dingtalk)["markdown"]["title"], "线索超时提醒");
        assert_eq!(n.body(Format::Feishu)["msg_type"], "text");
        assert_eq!(n.body(Format::Generic)["breach"]["lead_id"], 42);
        assert_eq!(n.body(Format::Generic)["breach"]["kind"], "first_response");
    }
}
