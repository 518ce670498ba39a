//! The demo company, built from the seeds' own example: a cloud-computing B2B company whose
//! CEO asked for "年度客户增长300家" (seed 004 §1.1), at growth stage, with the departments
//! of SPEC O-2 and one login per role of SPEC §11.
//!
//! Loading is idempotent: everything is looked up by its natural key (e-mail, department
//! name, team name) and only what is missing is created, so a second run changes nothing.

use domain::calendar::shipped_days;
use domain::company::CompanyProfile;
use domain::org::{DepartmentInput, Email, TeamInput, UserInput};
use domain::role::Role;
use store::{Actor, Db};

/// Every demo account has this password (listed in the README).
pub const DEMO_PASSWORD: &str = "marketops-demo";

/// (e-mail, name, role, department, team)
pub const PEOPLE: &[(&str, &str, Role, &str, &str)] = &[
    ("admin@yunqi.example", "系统管理员", Role::Admin, "管理层", ""),
    ("ceo@yunqi.example", "周明", Role::Executive, "管理层", ""),
    ("director@yunqi.example", "陈静", Role::MarketingDirector, "市场部", ""),
    ("marketer@yunqi.example", "李娜", Role::Marketer, "市场部", "获客组"),
    ("brand@yunqi.example", "马琳", Role::Marketer, "市场部", "品牌组"),
    ("content@yunqi.example", "许婷", Role::Marketer, "市场部", "内容组"),
    ("data@yunqi.example", "冯博", Role::Marketer, "市场部", "数据组"),
    ("sales.manager@yunqi.example", "张伟", Role::SalesManager, "销售部", "销售一组（华东）"),
    ("sales.rep@yunqi.example", "刘洋", Role::SalesRep, "销售部", "销售一组（华东）"),
    ("sales.north@yunqi.example", "钱进", Role::SalesManager, "销售部", "销售二组（华北）"),
    ("sales.rep2@yunqi.example", "孔亮", Role::SalesRep, "销售部", "销售二组（华北）"),
    ("product@yunqi.example", "王磊", Role::Product, "产品部", ""),
    ("rnd@yunqi.example", "黄涛", Role::Product, "研发部", ""),
    ("design@yunqi.example", "林晓", Role::Marketer, "设计/品牌部", ""),
    ("ops@yunqi.example", "何平", Role::Marketer, "运营部", ""),
    ("success@yunqi.example", "郑凯", Role::SalesManager, "客户成功部", ""),
    ("finance@yunqi.example", "赵敏", Role::Finance, "财务部", ""),
    ("legal@yunqi.example", "孙丽", Role::Legal, "法务部", ""),
    ("strategy@yunqi.example", "高远", Role::Executive, "战略/GTM 部", ""),
    ("viewer@yunqi.example", "吴昊", Role::Viewer, "运营部", ""),
];

/// (name, kind, head e-mail, description)
pub const DEPARTMENTS: &[(&str, &str, &str, &str)] = &[
    ("管理层", "executive", "ceo@yunqi.example", "公司战略与年度目标：年度客户增长300家"),
    ("市场部", "marketing", "director@yunqi.example", "品牌、获客、内容与数据：从流量到签单的转化引擎"),
    ("产品部", "product", "product@yunqi.example", "云产品规划与迭代，接收每月《市场需求简报》"),
    ("研发部", "rnd", "rnd@yunqi.example", "产品研发、Demo 与技术答疑"),
    ("设计/品牌部", "design", "design@yunqi.example", "视觉识别与物料设计"),
    ("运营部", "operations", "ops@yunqi.example", "用户与活动运营"),
    ("销售部", "sales", "sales.manager@yunqi.example", "线索跟进、商机与签约"),
    ("客户成功部", "customer_success", "success@yunqi.example", "续费、增购与客户案例"),
    ("财务部", "finance", "finance@yunqi.example", "预算、成本核算与 ROI 核查"),
    ("法务部", "legal", "legal@yunqi.example", "广告合规与合同审核"),
    ("战略/GTM 部", "strategy", "strategy@yunqi.example", "GTM 统筹与跨部门协同"),
];

/// (department, team, lead e-mail, focus, territories, marketing interface person)
pub const TEAMS: &[(&str, &str, &str, &str, &str, &str)] = &[
    ("市场部", "品牌组", "brand@yunqi.example", "行业峰会、奖项申报与品牌声量", "", ""),
    ("市场部", "获客组", "marketer@yunqi.example", "精准投放、线索获取（占市场人员 40%）", "", ""),
    ("市场部", "内容组", "content@yunqi.example", "白皮书、客户案例与直播课", "", ""),
    ("市场部", "数据组", "data@yunqi.example", "线索分级、渠道 ROI 与复盘数据", "", ""),
    (
        "销售部",
        "销售一组（华东）",
        "sales.manager@yunqi.example",
        "华东区域",
        "上海,江苏,浙江,安徽",
        "marketer@yunqi.example",
    ),
    (
        "销售部",
        "销售二组（华北）",
        "sales.north@yunqi.example",
        "华北区域",
        "北京,天津,河北,山东",
        "data@yunqi.example",
    ),
];

pub fn company() -> CompanyProfile {
    let mut f = domain::company::default_fields();
    f.set("name", "云启科技");
    f.set("industry", "云计算（B2B）");
    match CompanyProfile::parse(&f) {
        Ok(p) => p,
        Err(e) => panic!("the demo company profile is invalid: {e}"),
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    pub users: usize,
    pub departments: usize,
    pub teams: usize,
    pub calendar_days: usize,
    pub company: bool,
}

/// Loads whatever part of the demo company is missing.
pub async fn load(db: &Db, actor: &Actor, password: web::password::Params) -> anyhow::Result<Loaded> {
    let mut out = Loaded::default();
    crate::startup::ensure_playbook(db, actor.now).await?;
    if store::company::get(db).await?.is_none() {
        store::company::save(db, actor, &company()).await?;
        out.company = true;
    }
    // Accounts first (without placement), so departments and teams can name their heads.
    // One hash for the one published demo password: hashing it twenty times would only slow
    // the first start down.
    let hash = web::password::hash(DEMO_PASSWORD.to_string(), password).await;
    for (email, name, role, _, _) in PEOPLE {
        if store::org::find_user_by_email(db, email).await?.is_none() {
            let input = UserInput {
                email: Email::parse(email).map_err(anyhow::Error::msg)?,
                display_name: (*name).to_string(),
                role: *role,
                department_id: None,
                team_id: None,
                active: true,
                password: None,
            };
            store::org::create_user(db, actor, &input, &hash).await?;
            out.users += 1;
        }
    }
    let user_id = |users: &[store::org::User], email: &str| users.iter().find(|u| u.email == email).map(|u| u.id);
    let users = store::org::list_users(db).await?;
    let mut departments = store::org::list_departments(db).await?;
    for (name, kind, head, description) in DEPARTMENTS {
        if departments.iter().any(|d| d.name == *name) {
            continue;
        }
        let input = DepartmentInput {
            name: (*name).to_string(),
            kind: domain::org::DepartmentKind::parse(kind).ok_or_else(|| anyhow::anyhow!("bad kind {kind}"))?,
            head_user_id: user_id(&users, head),
            description: Some((*description).to_string()),
        };
        departments.push(store::org::create_department(db, actor, &input).await?);
        out.departments += 1;
    }
    let dept_id = |name: &str| departments.iter().find(|d| d.name == name).map(|d| d.id);
    let mut teams = store::org::list_teams(db).await?;
    for (dept, name, lead, focus, territories, interface) in TEAMS {
        let Some(department_id) = dept_id(dept) else { continue };
        if teams.iter().any(|t| t.department_id == department_id && t.name == *name) {
            continue;
        }
        let input = TeamInput {
            name: (*name).to_string(),
            department_id,
            lead_user_id: user_id(&users, lead),
            focus: Some((*focus).to_string()),
            territories: territories.split(',').filter(|t| !t.is_empty()).map(str::to_string).collect(),
            interface_user_id: user_id(&users, interface),
        };
        teams.push(store::org::create_team(db, actor, &input).await?);
        out.teams += 1;
    }
    // Place each account that has no department yet (accounts moved by an admin stay put).
    for (email, name, role, dept, team) in PEOPLE {
        let Some(u) = users.iter().find(|u| u.email == *email) else {
            continue;
        };
        if u.department_id.is_some() {
            continue;
        }
        let department_id = dept_id(dept);
        let team_id = teams.iter().find(|t| Some(t.department_id) == department_id && t.name == *team).map(|t| t.id);
        let input = UserInput {
            email: Email::parse(email).map_err(anyhow::Error::msg)?,
            display_name: (*name).to_string(),
            role: *role,
            department_id,
            team_id,
            active: u.active,
            password: None,
        };
        store::org::update_user(db, actor, u.id, &input, None).await?;
    }
    if let Some(days) = shipped_days("CN", 2026) {
        out.calendar_days = store::calendar::upsert_many(db, actor, &days).await?;
    }
    Ok(out)
}
