//! Roles and what each may do (SPEC §11).
//!
//! One table answers every permission question, so the UI (which links it shows), the API
//! (403s) and the CLI agree. Later capabilities add actions here, not checks in handlers.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Executive,
    MarketingDirector,
    Marketer,
    SalesManager,
    SalesRep,
    Product,
    Finance,
    Legal,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 10] = [
        Role::Admin,
        Role::Executive,
        Role::MarketingDirector,
        Role::Marketer,
        Role::SalesManager,
        Role::SalesRep,
        Role::Product,
        Role::Finance,
        Role::Legal,
        Role::Viewer,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Executive => "executive",
            Role::MarketingDirector => "marketing_director",
            Role::Marketer => "marketer",
            Role::SalesManager => "sales_manager",
            Role::SalesRep => "sales_rep",
            Role::Product => "product",
            Role::Finance => "finance",
            Role::Legal => "legal",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code() == s.trim())
    }

    pub fn can(self, action: Action) -> bool {
        use Action::*;
        use Role::*;
        match action {
            // Reading the organisation, the playbook and the calendar is open to every member:
            // the rules are meant to be known by the people they bind (C-7 data transparency).
            ViewOrg | ViewPlaybook | ViewCalendar | UseApi => true,
            // The company profile, working calendar and playbook are the marketing
            // organisation's rule book: the admin and the marketing director (who owns the
            // 市场管理制度) maintain them.
            EditCompany | EditCalendar | EditPlaybook => matches!(self, Admin | MarketingDirector),
            // Departments, teams and accounts are access control: admin only.
            EditOrg | ManageUsers => matches!(self, Admin),
            // P-3: the audit log is for admins and executives.
            ViewAudit => matches!(self, Admin | Executive),
            // Leads: everyone reads (within their scope, see `lead_scope`); viewers only read.
            ViewLeads => true,
            CaptureLeads | EditLeads => matches!(self, Admin | MarketingDirector | Marketer | SalesManager | SalesRep),
            // Reassigning a lead is a manager's call (L-4), or marketing's before hand-off.
            ReassignLeads => matches!(self, Admin | MarketingDirector | SalesManager),
            ManageCampaigns => matches!(self, Admin | MarketingDirector | Marketer),
            // L-7: the hand-off is accepted or rejected by sales, not by marketing.
            AcceptLeads => matches!(self, Admin | SalesManager | SalesRep),
            // Outbound webhooks carry company data to other systems: admin and director.
            ManageIntegrations => matches!(self, Admin | MarketingDirector),
            // C-7 data transparency: customers, their orders and the analytics are open to
            // every member.
            ViewCustomers => true,
            // C-1: orders come from the sales and finance systems; marketing, sales managers
            // and finance load them.
            ManageOrders => matches!(self, Admin | MarketingDirector | Marketer | SalesManager | Finance),
            // C-6: marketing and product run tests; everyone may read their results.
            ManageExperiments => matches!(self, Admin | MarketingDirector | Marketer | Product),
            // C-4: a referral reward is money leaving the company; finance pays it.
            PayRewards => matches!(self, Admin | Finance),
        }
    }
}

/// Things a user may try to do. Kept coarse on purpose: one row per screen or API group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    ViewOrg,
    EditOrg,
    ManageUsers,
    EditCompany,
    ViewPlaybook,
    EditPlaybook,
    ViewCalendar,
    EditCalendar,
    ViewAudit,
    UseApi,
    ViewLeads,
    CaptureLeads,
    EditLeads,
    ReassignLeads,
    ManageCampaigns,
    ManageIntegrations,
    AcceptLeads,
    ViewCustomers,
    ManageOrders,
    ManageExperiments,
    PayRewards,
}

/// Which leads a role sees (L permissions): a sales rep only their own, a sales manager their
/// team's, everyone else all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeadScope {
    All,
    Team,
    Own,
}

impl Role {
    pub fn lead_scope(self) -> LeadScope {
        match self {
            Role::SalesRep => LeadScope::Own,
            Role::SalesManager => LeadScope::Team,
            _ => LeadScope::All,
        }
    }
}

/// A member as far as permissions go: role, id and sales team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub role: Role,
    pub id: i64,
    pub team_id: Option<i64>,
}

/// L-4: routing skips sales reps marked unavailable (leave, full pipeline). A rep marks
/// themself; their team's sales manager marks them for them; the admin may mark anyone.
/// Only reps take routed leads, so only reps have an availability to change.
pub fn may_set_availability(actor: Member, target: Member) -> Result<(), &'static str> {
    if target.role != Role::SalesRep {
        return Err("only sales reps take routed leads");
    }
    let own_team = actor.role == Role::SalesManager && actor.team_id.is_some() && actor.team_id == target.team_id;
    if actor.role == Role::Admin || actor.id == target.id || own_team {
        Ok(())
    } else {
        Err("only the rep, their sales manager or an admin may change this")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.code()), Some(r));
        }
        assert_eq!(Role::parse("superuser"), None);
    }

    /// §11: only admins manage accounts; admins and executives read the audit log (P-3).
    #[test]
    fn admin_only_actions() {
        for r in Role::ALL {
            assert_eq!(r.can(Action::ManageUsers), r == Role::Admin, "{r:?}");
            assert_eq!(r.can(Action::ViewAudit), matches!(r, Role::Admin | Role::Executive), "{r:?}");
            assert!(r.can(Action::ViewPlaybook));
        }
        assert!(!Role::SalesRep.can(Action::EditCompany));
        assert!(Role::MarketingDirector.can(Action::EditCompany));
    }

    /// L-4: who may mark a rep unavailable.
    #[test]
    fn availability_is_the_reps_their_managers_or_the_admins() {
        let m = |role, id, team_id| Member { role, id, team_id };
        let rep = m(Role::SalesRep, 5, Some(1));
        assert!(may_set_availability(rep, rep).is_ok());
        assert!(may_set_availability(m(Role::SalesManager, 4, Some(1)), rep).is_ok());
        assert!(may_set_availability(m(Role::SalesManager, 9, Some(2)), rep).is_err());
        assert!(may_set_availability(m(Role::SalesRep, 6, Some(1)), rep).is_err());
        assert!(may_set_availability(m(Role::MarketingDirector, 2, None), rep).is_err());
        assert!(may_set_availability(m(Role::Admin, 1, None), rep).is_ok());
        assert!(may_set_availability(m(Role::Admin, 1, None), m(Role::Marketer, 3, None)).is_err());
    }
}
