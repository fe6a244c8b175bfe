// Generated from openapi/openapi.json by `shanzhi openapi`. Do not edit by hand.
/* eslint-disable */

declare const wx: {
  request(options: {
    url: string;
    method: string;
    data?: unknown;
    header?: Record<string, string>;
    success(result: { statusCode: number; data: unknown; header: Record<string, string> }): void;
    fail(error: { errMsg: string }): void;
  }): void;
};

/** An activity in a list or beside an enrolment, attendance or record. */
export interface ActivityBrief {
  "id": string;
  "type": ActivityType;
  "title": string;
  "state": ActivityState;
  "place_name": string;
  "starts_at": string;
  "ends_at": string;
  /** The community that organises and certifies. */
  "organiser": RegionBrief;
}

export interface ActivityCreate {
  /** Also decides the reward (the earning rule). */
  "type": ActivityType;
  "title": string;
  "description"?: string | null;
  /** Code of the organising community; it records and certifies the service. */
  "community": string;
  /** A team of that community: only its members may enrol. */
  "team"?: string | null;
  "place_name": string;
  "address"?: string | null;
  /** The place (the centre of a radius fence). */
  "location": LocationIn;
  "fence": FenceIn;
  "starts_at": string;
  /** After `starts_at`, at most 24 hours later. */
  "ends_at": string;
  /** Places; more volunteers wait. */
  "capacity": number;
}

/** An activity as a volunteer finds it. */
export interface ActivityItem {
  "id": string;
  "type": ActivityType;
  "title": string;
  "state": ActivityState;
  "place_name": string;
  "starts_at": string;
  "ends_at": string;
  /** The community that organises and certifies. */
  "organiser": RegionBrief;
  /** Only this team's members may enrol. */
  "team": TeamBrief | null;
  "capacity": number;
  /** Capacity minus the volunteers holding a place. */
  "places_left": number;
  /** Volunteers waiting for a place. */
  "waitlisted": number;
  /** Points for verified attendance (the ledger's rule); null: none. */
  "reward_points": number | null;
  /** From the location given; null without one. */
  "distance_m": number | null;
  /** The caller's enrolment, if any. */
  "my_enrolment": MyEnrolment | null;
}

/** One activity, with what a volunteer needs to decide and to get there. */
export interface ActivityOut {
  "id": string;
  "type": ActivityType;
  "title": string;
  "state": ActivityState;
  "place_name": string;
  "starts_at": string;
  "ends_at": string;
  /** The community that organises and certifies. */
  "organiser": RegionBrief;
  /** Only this team's members may enrol. */
  "team": TeamBrief | null;
  "capacity": number;
  /** Capacity minus the volunteers holding a place. */
  "places_left": number;
  /** Volunteers waiting for a place. */
  "waitlisted": number;
  /** Points for verified attendance (the ledger's rule); null: none. */
  "reward_points": number | null;
  /** From the location given; null without one. */
  "distance_m": number | null;
  /** The caller's enrolment, if any. */
  "my_enrolment": MyEnrolment | null;
  "description": string | null;
  "address": string | null;
  "location": PointOut;
  "fence": FenceOut;
  /** Volunteers holding a place. */
  "enrolled": number;
  /** Why it was cancelled; null otherwise. */
  "cancel_reason": string | null;
  "published_at": string | null;
  "cancelled_at": string | null;
  "finished_at": string | null;
}

export type ActivityState = "draft" | "published" | "cancelled" | "finished";

/** Also the ledger's earning-rule `activity_type`: the reward is the rule's points. */
export type ActivityType = "public_security_patrol" | "rental_inspection" | "fire_safety_check" | "community_service" | "civilised_traffic" | "elderly_care";

/** Fields to change; a field left out stays as it is. A draft takes any change; a */
export interface ActivityUpdate {
  "type"?: ActivityType;
  "title"?: string;
  "description"?: string | null;
  "community"?: string;
  /** null: open to every volunteer. */
  "team"?: string | null;
  "place_name"?: string;
  "address"?: string | null;
  "location"?: LocationIn;
  "fence"?: FenceIn;
  "starts_at"?: string;
  "ends_at"?: string;
  "capacity"?: number;
}

/** The agreement text the mediator puts to the parties. */
export interface AgreementIn {
  "text": string;
  /** The parties will apply to a court to confirm it (司法确认). */
  "judicial_confirmation"?: boolean;
}

export interface AgreementOut {
  /** Bumped on every change of the text. */
  "version": number;
  "text": string;
  "judicial_confirmation": boolean;
  "confirmations": Array<ConfirmationOut>;
  "confirmed_by_all": boolean;
}

export interface AgreementSummary {
  "text": string;
  "version": number;
  /** To be submitted for judicial confirmation. */
  "judicial_confirmation": boolean;
}

export interface ApproveIn {
  /** Why, for the record. */
  "note"?: string | null;
  /** Service minutes to credit (at most the activity's window). Default: check-in to check-out within the window, or check-in to the activity's end for someone who never checked out. */
  "minutes"?: number | null;
}

export interface AreaRef {
  /** The region's code, e.g. `gz.tianhe.shipai`. */
  "code": string;
  "name": string;
  "name_en": string | null;
}

export interface AssignedMediator {
  "display_name": string;
  "title": string | null;
  "studio_name": string | null;
}

export interface Assignment {
  /** An active mediator who fits the dispute. */
  "mediator_id": string;
  /** Why; shown on the case's timeline. */
  "note"?: string | null;
}

export interface AttachmentOut {
  /** The upload's id. */
  "id": string;
  /** Short-lived URL to fetch the file. */
  "url": string;
  "content_type": string;
  /** The timeline event it came with. */
  "event_seq"?: number | null;
}

export interface AttendanceCounts {
  "checked_in": number;
  "review": number;
  "verified": number;
  "rejected": number;
}

/** My attendance at an activity: where it stands and what it earned. */
export interface AttendanceOut {
  "id": string;
  "activity": ActivityBrief;
  /** `checked_in`, `review` (waits for staff), `verified` (hours and points credited) or `rejected`. */
  "state": AttendanceState;
  "checked_in_at": string;
  "checked_out_at"?: string | null;
  /** Service minutes credited, once verified. */
  "minutes"?: number | null;
  /** Points awarded, once verified. */
  "points"?: number | null;
  "flags": Array<FlagOut>;
  /** True when a doubtful signal sends this attendance to staff review rather than paying at check-out. */
  "will_be_reviewed": boolean;
  "verified_at"?: string | null;
  /** What staff wrote when they decided. */
  "review_note"?: string | null;
}

export type AttendanceState = "checked_in" | "review" | "verified" | "rejected";

export interface AttendanceVolunteer {
  "id": string;
  /** The volunteer number, e.g. `V2026-0000123`. */
  "number"?: string | null;
  "real_name": string;
}

export interface AttendeeOut {
  "party_id": string;
  "role": PartyRole;
  "name": string;
}

/** When the volunteer can usually serve. */
export interface Availability {
  "weekday_daytime"?: boolean;
  "weekday_evening"?: boolean;
  "weekend"?: boolean;
  /** Anything else, e.g. shifts. */
  "note"?: string | null;
}

/** The member's points: what they can spend, what is reserved, and what expires soon. */
export interface BalanceOut {
  /** Points that can be spent now. */
  "available": number;
  /** Points reserved by redemptions not yet picked up. */
  "held": number;
  /** Of the available points, those expiring within 30 days. */
  "expiring_soon": number;
  /** When the next of the available points expire; null if none will. */
  "expiring_at": string | null;
}

export interface CancelIn {
  /** Shown to every enrolled volunteer. */
  "reason": string;
}

export interface CaseEventOut {
  "seq": number;
  "action": string;
  "from_state": CaseState | null;
  "to_state": CaseState | null;
  "note": string | null;
  /** `resident`, a staff role, or `system`. */
  "actor_role": string;
  /** Who acted; given for staff only, never for residents. */
  "actor"?: PersonOut | null;
  "data": Record<string, unknown>;
  "created_at": string;
}

export type CaseKind = "report" | "complaint" | "mediation";

/** A case in a list: enough to show a row and open the case. */
export interface CaseListItem {
  "id": string;
  "number": string;
  "kind": CaseKind;
  "state": CaseState;
  "category": CategoryBrief;
  /** The first 40 characters of the description. */
  "summary": string;
  "address": string | null;
  "supporters": number;
  "rating": number | null;
  "response_due_at": string;
  "resolution_due_at": string;
  "created_at": string;
  "updated_at": string | null;
}

/** A case as its reporter or the staff handling it see it. */
export interface CaseOut {
  "id": string;
  /** Human-readable number, e.g. `RPT-20261122-000123`. */
  "number": string;
  "kind": CaseKind;
  "state": CaseState;
  /** Send back to staff actions (optimistic locking). */
  "version": number;
  "category": CategoryBrief;
  "description": string;
  "location": PointOut;
  "address": string | null;
  "grid": RegionBrief;
  /** The region whose staff handle it now. */
  "queue": RegionBrief;
  "channel": Channel;
  "anonymous": boolean;
  /** Null to staff when the case is anonymous, or staff registered it for a resident (whether or not the number belongs to an account). */
  "reporter"?: ReporterOut | null;
  /** Masked: the number staff registered the case with, else the reporter's bound phone; hidden when anonymous. */
  "contact_phone"?: string | null;
  /** Whom a complaint is about. */
  "target"?: TargetOut | null;
  "priority": string;
  "escalation_level": number;
  "assignee_id": string | null;
  /** Residents who added their +1. */
  "supporters": number;
  "response_due_at": string;
  "resolution_due_at": string;
  "accepted_at": string | null;
  "resolved_at": string | null;
  "closed_at": string | null;
  "rejected_reason": string | null;
  "rating": number | null;
  "rating_comment": string | null;
  "reopen_count": number;
  "created_at": string;
  "updated_at": string | null;
  "attachments": Array<AttachmentOut>;
  "timeline": Array<CaseEventOut>;
}

/** A case staff register for a resident who phoned or came to the counter. */
export interface CaseRegistration {
  "kind": "report" | "complaint";
  /** The category's id or its code (of that kind). */
  "category": string;
  "description": string;
  "location": LocationIn;
  /** The place as the caller says. */
  "address"?: string | null;
  "channel": RegisterChannel;
  /** The caller's mainland mobile number (11 digits); links the case to the resident who bound this number (never shown to staff), and is stored encrypted. */
  "resident_phone"?: string | null;
  /** Complaints: whom it is about. */
  "target"?: ComplaintTargetIn | null;
}

export type CaseState = "submitted" | "accepted" | "in_progress" | "resolved" | "closed" | "rejected" | "reopened";

/** A region's figures and those of each region directly below it. */
export interface CaseStats {
  /** Start of the period (included). */
  "period_from": string;
  /** End of the period (excluded). */
  "period_to": string;
  /** The “now” of the overdue figures and of the mediation states. */
  "computed_at": string;
  "region": RegionFigures;
  /** Every region directly below, ordered by code; zero figures when it has no cases. */
  "children": Array<RegionFigures>;
}

export interface Catalog {
  /** Nearest first when a location is given. */
  "centers": Array<CenterCatalog>;
}

export interface CatalogItem {
  "id": string;
  "name": string;
  "name_en": string;
  "description": string;
  /** Points per item. */
  "price": number;
  "photo_url": string | null;
  /** Items left to redeem at this center. */
  "left": number;
  "limit": LimitOut | null;
  /** Items you may still redeem this period; null: no limit. */
  "allowance": number | null;
  "active_until": string | null;
}

export interface CategoryBrief {
  "id": string;
  "code": string;
  "name": string;
  "name_en": string;
  "handling_unit": string;
  "handling_unit_en": string;
}

export interface CategoryCreate {
  "kind": CaseKind;
  /** Lower-case letters, digits, _. */
  "code": string;
  "name": string;
  "name_en": string;
  "response_hours": number;
  "resolution_hours": number;
  "handling_unit": string;
  "handling_unit_en": string;
  "position"?: number;
  "active"?: boolean;
}

/** A kind of report or complaint, with its SLA and the unit that handles it. */
export interface CategoryOut {
  "id": string;
  "kind": CaseKind;
  /** Stable code, usable instead of the id when submitting. */
  "code": string;
  /** Name in Chinese, as shown in the app. */
  "name": string;
  "name_en": string;
  /** Hours within which staff must accept the case. */
  "response_hours": number;
  /** Hours within which the case must be resolved. */
  "resolution_hours": number;
  /** The unit that handles it by default. */
  "handling_unit": string;
  "handling_unit_en": string;
  /** Order in the app's list (ascending). */
  "position": number;
  "active": boolean;
}

export interface CategoryRef {
  "id": string;
  "code": string;
  "name": string;
  "name_en": string;
}

/** Fields to change; a field left out stays as it is. Kind and code never change. */
export interface CategoryUpdate {
  "name"?: string;
  "name_en"?: string;
  "response_hours"?: number;
  "resolution_hours"?: number;
  "handling_unit"?: string;
  "handling_unit_en"?: string;
  "position"?: number;
  "active"?: boolean;
}

export interface CenterBrief {
  "id": string;
  "code": string;
  "name": string;
  "name_en": string;
  "address": string;
}

export interface CenterCatalog {
  "center": ServiceCenterOut;
  /** From the location given; null without one. */
  "distance_m": number | null;
  "rewards": Array<CatalogItem>;
}

export type Channel = "miniapp" | "phone" | "counter" | "inspection";

export interface ChannelCounts {
  "miniapp"?: number;
  "phone"?: number;
  "counter"?: number;
  "inspection"?: number;
}

/** The rotating code to show on site: as six digits and as a QR. */
export interface CheckinCodeOut {
  /** Six digits a volunteer can type when the QR will not scan. */
  "code": string;
  /** Text to draw as a QR code; the volunteer's phone scans it. */
  "qr": string;
  /** When this code started to show. */
  "valid_from": string;
  /** When the next code shows: poll again then (the old one is still accepted for one more step). */
  "refresh_at": string;
  /** How long each code shows, in seconds. */
  "step_seconds": number;
  "activity": ActivityBrief;
}

export interface ChecklistItemOut {
  /** Stable code of the item, sent back in `results[].item`. */
  "code": string;
  /** What to check, in Chinese, as shown in the app. */
  "label": string;
  "label_en": string;
  /** Code of the report category a failed item is filed in. */
  "category": string;
}

/** What to check at each house during this activity, in order. */
export interface ChecklistOut {
  "activity_id": string;
  "type": ActivityType;
  "items": Array<ChecklistItemOut>;
}

/** A one-click complaint: a report that names whom it is about. */
export interface ComplaintCreate {
  /** The category's id or its code. */
  "category": string;
  "description": string;
  "location": LocationIn;
  /** What the resident calls the place (optional). */
  "address"?: string | null;
  /** Uploads (purpose `case_photo` or `case_video`) in display order. */
  "upload_ids"?: Array<string>;
  /** Hide the resident's identity from staff. */
  "anonymous"?: boolean;
  "target": ComplaintTargetIn;
}

export type ComplaintTarget = "department" | "property_company" | "business";

export interface ComplaintTargetIn {
  /** department, property_company or business. */
  "type": ComplaintTarget;
  "name": string;
}

export interface ConfirmIn {
  /** The agreement version the party read and confirms. */
  "version": number;
}

export interface ConfirmationOut {
  "party_id": string;
  "role": PartyRole;
  "name": string;
  /** Confirmed the current version. */
  "confirmed": boolean;
  /** When (null unless `confirmed`). */
  "confirmed_at": string | null;
}

export type Consent = "pending" | "accepted" | "declined" | "expired";

export interface CounterRedemptionCreate {
  /** The reward's id. */
  "reward": string;
  /** The service center to pick it up at. */
  "center": string;
  "quantity"?: number;
  /** The code shown on the member's phone. */
  "member_code": string;
}

export interface DeclineIn {
  /** Why (optional); the applicant and mediator see it. */
  "reason"?: string | null;
}

/** Also the code of the case category (kind `mediation`) the dispute is filed under. */
export type DisputeType = "neighbours" | "family" | "labour_wages" | "property_management" | "landlord_tenant" | "consumer" | "other";

export interface EarningRuleIn {
  /** The activity type, as volunteers name it: lower-case letters, digits, `_`, `.`, `-`. */
  "activity_type": string;
  /** Points per activity. */
  "points": number;
  /** Most points a member may earn from this activity type per day (Asia/Shanghai); null: no cap. */
  "daily_cap"?: number | null;
  /** An inactive rule awards nothing. */
  "active"?: boolean;
}

export interface EarningRuleOut {
  "activity_type": string;
  "points": number;
  "daily_cap": number | null;
  "active": boolean;
  "updated_at": string | null;
}

/** The complete set of rules: rules not listed are deactivated (never deleted). */
export interface EarningRulesIn {
  "rules": Array<EarningRuleIn>;
}

export interface EnrolmentCounts {
  "enrolled": number;
  "waitlisted": number;
  "cancelled": number;
  "no_show": number;
}

/** A volunteer's place (or place in the queue) for an activity. */
export interface EnrolmentOut {
  "id": string;
  "activity": ActivityBrief;
  "state": EnrolmentState;
  /** 1 = next in line; null unless waiting. */
  "waitlist_position": number | null;
  /** When you (last) enrolled: the queue's order. */
  "queued_at": string;
  /** When you got a place from the waitlist. */
  "promoted_at": string | null;
  "cancelled_at": string | null;
  /** `volunteer` (you), `activity_cancelled` (the organiser called it off: see `cancel_reason`) or `activity_finished` (still waiting when it ended). */
  "cancelled_by": string | null;
  /** Why the organiser cancelled the activity. */
  "cancel_reason": string | null;
  "created_at": string;
}

export type EnrolmentState = "enrolled" | "waitlisted" | "cancelled" | "no_show";

/** One line of the statement: points in (+) or out (-), with the balance after it. */
export interface EntryOut {
  /** The entry; pass the last one's `next_cursor` to page. */
  "id": string;
  "transaction_id": string;
  /** award, reverse (an award taken back), hold (reserved for a redemption), release (a reservation given back), or expire. */
  "kind": TransactionKind;
  /** Why, as a stable code the app shows in words. */
  "reason": string;
  /** What it is about, e.g. `redemption:<id>` or `attendance:<id>`. */
  "source_ref": string | null;
  /** For points earned by an activity, its type. */
  "activity_type": string | null;
  /** Signed: positive in, negative out. */
  "amount": number;
  /** The available balance right after this entry. */
  "balance": number;
  "created_at": string;
}

export interface FeatureIssueOut {
  /** Position of the feature in `features`, from 0. */
  "index": number;
  /** The feature's `properties.code`, if it had one. */
  "code": string | null;
  /** Stable reason, e.g. `geometry_self_intersection`. */
  "reason": string;
  /** The reason in zh-CN and en. */
  "message": Record<string, string>;
}

/** Where check-in counts: a radius around the place, or a polygon. Exactly one. */
export interface FenceIn {
  /** Metres around the place. */
  "radius_m"?: number | null;
  /** The area, in the coordinate system of `coord` (by default that of `location`; gcj02 in an update that does not send `location`). */
  "polygon"?: PolygonIn | null;
  /** Coordinate system of `polygon`. */
  "coord"?: "gcj02" | "wgs84" | null;
}

export interface FenceOut {
  /** Metres around the place; null for a polygon. */
  "radius_m": number | null;
  /** GeoJSON Polygon; null for a radius. */
  "polygon": Record<string, unknown> | null;
  "coord"?: "wgs84";
}

/** The report a failed item became, as it stands now. */
export interface FindingOut {
  "case_id": string;
  /** The report's number, e.g. `RPT-20261122-000123`. */
  "number": string;
  "state": CaseState;
}

export interface FittingStudio {
  "id": string;
  "name": string;
  "name_en": string | null;
  "description": string | null;
  "specialties": Array<Specialty>;
  /** The region it serves. */
  "area": AreaRef;
  /** Its mediators who take this kind of dispute here. */
  "mediator_count": number;
  "mediators": Array<MediatorCard>;
  /** `busy` when each of those mediators carries at least 80% of the cases they may carry at once (a new case may then wait longer); `available` otherwise. */
  "availability": "available" | "busy";
}

/** The active studios that take a dispute type at a place and have a mediator with room: */
export interface FittingStudios {
  "dispute_type": DisputeType;
  /** The specialty this dispute type needs. */
  "specialty": Specialty;
  /** The grid the point lies in. */
  "place": AreaRef;
  "items": Array<FittingStudio>;
}

/** A doubtful signal: the attendance goes to staff review instead of paying at once. */
export interface FlagOut {
  /** `code_of_other_activity`, `poor_accuracy`, `outside_geofence`, `impossible_speed`, `no_service_minutes` or `no_check_out`. */
  "code": string;
  /** `check_in`, `check_out` or `track`: where it was seen. */
  "at": string;
  /** What it means, in the caller's language. */
  "message": string;
  /** Machine-readable facts (distance, speed, ...). */
  "detail"?: Record<string, unknown>;
}

export interface FulfilIn {
  /** The service center you are handing it out at. */
  "center": string;
}

/** One grid: `properties` has `code` (full path), `name` and optionally `name_en`. */
export interface GridFeature {
  "type": "Feature";
  /** `code` (full path of the grid), `name`, optional `name_en`. */
  "properties"?: Record<string, unknown> | null;
  /** GeoJSON Polygon or MultiPolygon, in the system named by `coord`. */
  "geometry"?: Record<string, unknown> | null;
}

/** Grids to create or update; at most 50,000 features at once. */
export interface GridFeatureCollection {
  "type": "FeatureCollection";
  /** At most 50000 features; more answer 413. */
  "features": Array<GridFeature>;
}

/** `regions.import_invalid` lists every bad feature; `request.invalid` lists `errors`. */
export interface GridImportProblem {
  /** URI naming the problem type; derived from `code`. */
  "type": string;
  /** Short summary in the caller's language. */
  "title": string;
  /** The HTTP status code. */
  "status": number;
  /** What happened, in the caller's language. */
  "detail": string;
  /** Stable machine-readable code, e.g. `auth.token_expired`. */
  "code": string;
  /** The request path. */
  "instance"?: string | null;
  /** Quote this when reporting a problem. */
  "request_id"?: string | null;
  /** How many features are bad. */
  "invalid_count"?: number | null;
  /** True if not every problem is listed. */
  "truncated"?: boolean | null;
  "invalid_features"?: Array<FeatureIssueOut> | null;
  [key: string]: unknown;
}

export interface GridImportResult {
  /** Grids that did not exist before. */
  "created": number;
  /** Existing grids whose name or boundary changed. */
  "updated": number;
  /** Existing grids the import left as they were. */
  "unchanged": number;
}

export interface Health {
  "status": string;
  "checks"?: Record<string, string>;
}

/** One house inspected: where it is and the answer to each checklist item checked. */
export interface InspectionCreate {
  /** The house, e.g. street, number, room. */
  "address": string;
  /** Where the house is; its report is filed there. */
  "location": LocationIn;
  /** At least one item; each item at most once, in any order. */
  "results": Array<ResultIn>;
}

/** A house inspected during an activity, with each item's answer and reports filed. */
export interface InspectionOut {
  "id": string;
  "activity_id": string;
  "address": string;
  "location": PointOut;
  "results": Array<ResultOut>;
  "created_at": string;
}

export interface InspectorOut {
  "id": string;
  /** The volunteer number, e.g. `V2026-0000123`. */
  "number": string | null;
  "real_name": string;
}

/** An invitation code for one respondent, shown this once: forward it in WeChat. */
export interface InvitationIssued {
  "party_id": string;
  /** The respondent it is for. */
  "name": string;
  /** 10 characters; shown only now (a lost one is re-issued). */
  "code": string;
  /** A message to forward in WeChat, in Chinese. */
  "share_text": string;
  "consent_due_at": string;
}

/** What the invited respondent learns before answering: never the applicant's contact. */
export interface InvitationOut {
  "number": string;
  "state": MediationState;
  "dispute_type": DisputeType;
  "dispute_type_name": string;
  "dispute_type_name_en": string;
  "description": string;
  "claim": string;
  "applicant_name": string;
  /** The name the applicant gave the respondent. */
  "invited_as": string;
  /** The community where the dispute is. */
  "place": RegionBrief;
  "consent_due_at": string;
  /** The respondent's own answer so far. */
  "consent": Consent;
  /** Given once the caller accepted: open the mediation with it. */
  "mediation_id": string | null;
  /** Other routes, when it was not mediated. */
  "advice": Array<RouteOut>;
}

export interface Leaderboard {
  "community": RegionBrief;
  /** `YYYY-MM`, China time. */
  "month": string;
  /** The top 50, most minutes first. */
  "entries": Array<LeaderboardEntry>;
  /** Your place, when you served with this community that month. */
  "me": LeaderboardMine | null;
}

export interface LeaderboardEntry {
  /** 1 is first; equal minutes share a rank. */
  "rank": number;
  /** Volunteer number. */
  "number": string | null;
  /** Masked: the first character and `*`, e.g. `陈*`. */
  "name": string;
  "minutes": number;
  /** Hours with one decimal. */
  "hours": number;
  /** Activities with verified attendance that month. */
  "activities": number;
}

export interface LeaderboardMine {
  "rank": number;
  "minutes": number;
  "hours": number;
  "activities": number;
}

export interface LimitIn {
  /** Items a member may redeem per period. */
  "count": number;
  /** Calendar day, week, month or year (China time). */
  "period": LimitPeriod;
}

export interface LimitOut {
  "count": number;
  "period": LimitPeriod;
}

export type LimitPeriod = "day" | "week" | "month" | "year";

/** The grid containing a point, and the regions above it. */
export interface LocateResult {
  "grid": RegionSummary;
  /** From the city down to the community. */
  "ancestors": Array<RegionSummary>;
  /** The point that was looked up, in WGS-84. */
  "point": LocatedPoint;
}

export interface LocatedPoint {
  "lat": number;
  "lng": number;
  "coord"?: "wgs84";
}

export interface LocationIn {
  /** Latitude in degrees. */
  "lat": number;
  /** Longitude in degrees. */
  "lng": number;
  /** `gcj02` (what wx.getLocation gives by default) or `wgs84`. */
  "coord": "gcj02" | "wgs84";
}

export interface Me {
  "id": string;
  "nickname": string | null;
  /** Masked, e.g. `138****5678`; null until bound. */
  "phone": string | null;
  "roles": Array<RoleOut>;
  "created_at": string;
}

/** The new mediation, and each respondent's invitation code (this once). */
export interface MediationCreated {
  /** The case id. */
  "id": string;
  /** Human-readable number, e.g. `MED-20261122-000042`. */
  "number": string;
  "state": MediationState;
  /** How the caller stands to this mediation. */
  "viewer": Viewer;
  "dispute_type": DisputeType;
  "dispute_type_name": string;
  "dispute_type_name_en": string;
  "description": string;
  /** What the applicant asks for. */
  "claim": string;
  "address": string | null;
  /** The community where the dispute is. */
  "place": RegionBrief;
  "grid": RegionBrief;
  "evidence": Array<AttachmentOut>;
  "parties": Array<PartyOut>;
  /** Once assigned. */
  "mediator": AssignedMediator | null;
  /** The studio the applicant chose. */
  "preferred_studio_name": string | null;
  /** Respondents answer the invitation by then. */
  "consent_due_at": string;
  /** The time limit; past it, the admins above step in. */
  "due_at": string;
  "assigned_at": string | null;
  "escalated_at": string | null;
  "ended_at": string | null;
  "agreement": AgreementSummary | null;
  /** Where a dispute without agreement goes. */
  "referral": RouteOut | null;
  "outcome_note": string | null;
  /** Other routes, when the dispute was not mediated (declined or unanswered). */
  "advice": Array<RouteOut>;
  "timeline": Array<TimelineEntryOut>;
  "created_at": string;
  "updated_at": string | null;
  /** One per respondent, with its code; empty when answering a retry. */
  "invitations": Array<InvitationIssued>;
  /** On a retry: the codes cannot be shown again; re-issue an invitation to get a new code. */
  "hint"?: string | null;
}

/** Mediation in one region, in aggregate only: no case, party or mediator is named. */
export interface MediationFigures {
  /** Mediations created in the period. */
  "cases": number;
  /** Numerator: mediations in which every respondent accepted. Denominator: mediations whose consent is decided: every respondent accepted, or one declined or let the invitation expire (those end as not mediated). Mediations still waiting for an answer, and those withdrawn before every answer came, are left out. */
  "consent_rate": Rate;
  /** Numerator: mediations concluded with an agreement. Denominator: mediations that ended after mediation: concluded or no agreement. Withdrawn and not mediated ones are left out (no mediation outcome), and so are open ones. */
  "success_rate": Rate;
  /** Concluded mediations: the mean time from the case's creation to its end, in days, to one decimal; null when none concluded. */
  "average_days_to_conclude": number | null;
  "by_state": MediationStateCounts;
  /** Mediations escalated because their time limit passed while open, whatever their state now. */
  "escalated": number;
}

/** A mediation in the caller's list: enough to show a row and open it. */
export interface MediationListItem {
  "id": string;
  "number": string;
  "state": MediationState;
  /** The caller's side in it. */
  "role": PartyRole;
  "dispute_type": DisputeType;
  "dispute_type_name": string;
  "dispute_type_name_en": string;
  /** The first 40 characters of the description. */
  "summary": string;
  "consent_due_at": string;
  "due_at": string;
  "ended_at": string | null;
  "created_at": string;
  "updated_at": string | null;
}

/** A mediation as the viewer may see it (a party, its mediator, or a supervisor). */
export interface MediationOut {
  /** The case id. */
  "id": string;
  /** Human-readable number, e.g. `MED-20261122-000042`. */
  "number": string;
  "state": MediationState;
  /** How the caller stands to this mediation. */
  "viewer": Viewer;
  "dispute_type": DisputeType;
  "dispute_type_name": string;
  "dispute_type_name_en": string;
  "description": string;
  /** What the applicant asks for. */
  "claim": string;
  "address": string | null;
  /** The community where the dispute is. */
  "place": RegionBrief;
  "grid": RegionBrief;
  "evidence": Array<AttachmentOut>;
  "parties": Array<PartyOut>;
  /** Once assigned. */
  "mediator": AssignedMediator | null;
  /** The studio the applicant chose. */
  "preferred_studio_name": string | null;
  /** Respondents answer the invitation by then. */
  "consent_due_at": string;
  /** The time limit; past it, the admins above step in. */
  "due_at": string;
  "assigned_at": string | null;
  "escalated_at": string | null;
  "ended_at": string | null;
  "agreement": AgreementSummary | null;
  /** Where a dispute without agreement goes. */
  "referral": RouteOut | null;
  "outcome_note": string | null;
  /** Other routes, when the dispute was not mediated (declined or unanswered). */
  "advice": Array<RouteOut>;
  "timeline": Array<TimelineEntryOut>;
  "created_at": string;
  "updated_at": string | null;
}

/** A one-click mediation request: the dispute, where it is, and whom it is with. */
export interface MediationRequest {
  "dispute_type": DisputeType;
  /** What happened. */
  "description": string;
  /** What the applicant asks for. */
  "claim": string;
  "location": LocationIn;
  /** What the applicant calls the place (optional). */
  "address"?: string | null;
  /** Evidence: uploads (purpose `case_photo` or `case_video`) in display order. */
  "upload_ids"?: Array<string>;
  /** The applicant's own name, as the other side and the mediator see it. Their phone is the one bound to their account. */
  "applicant_name": string;
  /** A studio of the mediation supermarket the applicant prefers. */
  "preferred_studio_id"?: string | null;
  "respondents": Array<RespondentIn>;
}

export type MediationState = "awaiting_consent" | "awaiting_mediator" | "assigned" | "in_session" | "agreement_pending" | "concluded" | "no_agreement" | "withdrawn" | "not_mediated";

/** Mediations created in the period, by the state they are in now. */
export interface MediationStateCounts {
  /** Still under way: awaiting consent, awaiting a mediator, assigned, in session, or with an agreement waiting for every party's confirmation. */
  "open": number;
  /** Ended with an agreement every party confirmed. */
  "concluded": number;
  /** Ended without agreement, referred elsewhere. */
  "no_agreement": number;
  /** Withdrawn by the applicant. */
  "withdrawn": number;
  /** Ended before mediation: a respondent declined, or consent never came. */
  "not_mediated": number;
}

/** A mediator as a party sees them: a display name and a title, nothing personal. */
export interface MediatorCard {
  "display_name": string;
  /** e.g. 人民调解员, 律师. */
  "title": string | null;
}

/** A case in the mediator's own queue: the parties by name only (no phones here). */
export interface MediatorCaseItem {
  /** The mediation's (case's) id. */
  "id": string;
  "number": string;
  "dispute_type": DisputeType;
  "state": MediationState;
  "parties": Array<PartyName>;
  "assigned_at": string | null;
  /** The next scheduled session, if any. */
  "next_session_at": string | null;
  /** The time limit of the mediation while it is open; null once it ended. */
  "next_deadline": string | null;
  /** Open and past its time limit. */
  "overdue": boolean;
}

/** Who: an existing user, by `user_id` or `openid` (exactly one). */
export interface MediatorCreate {
  /** The user's id. */
  "user_id"?: string | null;
  /** The user's WeChat openid. */
  "openid"?: string | null;
  /** Shown to the parties. */
  "display_name": string;
  /** e.g. 人民调解员. */
  "title"?: string | null;
  "specialties": Array<Specialty>;
  /** Code of the region they take cases in; it must lie in a region you administer (and within their studio's area). They are granted the `mediator` role on it. */
  "area": string;
  /** The studio they work in, if any. */
  "studio_id"?: string | null;
  /** Cases at once before the automatic assignment passes them by. */
  "max_active"?: number;
}

export interface MediatorOut {
  "id": string;
  "user_id": string;
  "display_name": string;
  "title": string | null;
  "specialties": Array<Specialty>;
  "area": AreaRef;
  "studio": StudioRef | null;
  "max_active": number;
  /** Cases they carry now (assigned, in session, agreement). */
  "load": number;
  "active": boolean;
  "created_at": string;
  "updated_at": string | null;
}

export interface MediatorRef {
  "id": string;
  "display_name": string;
  "title": string | null;
  "studio": StudioRef | null;
}

/** Fields to change; a field left out stays as it is. `studio_id: null` leaves the studio. */
export interface MediatorUpdate {
  "display_name"?: string;
  "title"?: string | null;
  "specialties"?: Array<Specialty>;
  /** A new area; the `mediator` role moves with it. Cases they carry stay. */
  "area"?: string;
  "studio_id"?: string | null;
  "max_active"?: number;
  /** false: no new cases; the cases they carry stay until reassigned. */
  "active"?: boolean;
}

export interface MemberCodeOut {
  /** Show as a QR code at the counter; refresh every minute. */
  "code": string;
  /** When staff can no longer scan it. */
  "expires_at": string;
  /** When the app should fetch a new one. */
  "refresh_after": string;
}

export interface MyEnrolment {
  "id": string;
  "state": EnrolmentState;
  /** 1 = next in line; null unless waiting. */
  "waitlist_position": number | null;
}

export interface MyTeam {
  "id": string;
  "name": string;
  /** true when you lead this team. */
  "leader": boolean;
}

/** Mediation failed: where the parties may turn next. */
export interface NoAgreementIn {
  /** Where the dispute is referred. */
  "referral": Referral;
  /** The mediator's words to the parties (shown to them). */
  "note"?: string | null;
}

/** Where the mediation stands: the agreement on the table (or reached), or the */
export interface OutcomeOut {
  "mediation_id": string;
  "state": MediationState;
  /** Null until one is proposed. */
  "agreement": AgreementOut | null;
  /** The caller is a party who has not confirmed the current version. */
  "awaiting_your_confirmation": boolean;
  "referral": RouteOut | null;
  /** The mediator's note on the outcome. */
  "note": string | null;
  "ended_at": string | null;
}

export interface Page_ActivityItem_ {
  "items": Array<ActivityItem>;
  /** Pass as `cursor` for the next page; null on the last page. */
  "next_cursor"?: string | null;
}

export interface Page_CaseListItem_ {
  "items": Array<CaseListItem>;
  /** Pass as `cursor` for the next page; null on the last page. */
  "next_cursor"?: string | null;
}

export interface Page_EnrolmentOut_ {
  "items": Array<EnrolmentOut>;
  /** Pass as `cursor` for the next page; null on the last page. */
  "next_cursor"?: string | null;
}

export interface Page_EntryOut_ {
  "items": Array<EntryOut>;
  /** Pass as `cursor` for the next page; null on the last page. */
  "next_cursor"?: string | null;
}

export interface Page_InspectionOut_ {
  "items": Array<InspectionOut>;
  /** Pass as `cursor` for the next page; null on the last page. */
  "next_cursor"?: string | null;
}

export interface Page_MediationListItem_ {
  "items": Array<MediationListItem>;
  /** Pass as `cursor` for the next page; null on the last page. */
  "next_cursor"?: string | null;
}

export interface Page_MediatorCaseItem_ {
  "items": Array<MediatorCaseItem>;
  /** Pass as `cursor` for the next page; null on the last page. */
  "next_cursor"?: string | null;
}

export interface Page_MediatorOut_ {
  "items": Array<MediatorOut>;
  /** Pass as `cursor` for the next page; null on the last page. */
  "next_cursor"?: string | null;
}

export interface Page_RedemptionOut_ {
  "items": Array<RedemptionOut>;
  /** Pass as `cursor` for the next page; null on the last page. */
  "next_cursor"?: string | null;
}

export interface Page_RewardOut_ {
  "items": Array<RewardOut>;
  /** Pass as `cursor` for the next page; null on the last page. */
  "next_cursor"?: string | null;
}

export interface Page_RoleGrantOut_ {
  "items": Array<RoleGrantOut>;
  /** Pass as `cursor` for the next page; null on the last page. */
  "next_cursor"?: string | null;
}

export interface Page_ServiceCenterOut_ {
  "items": Array<ServiceCenterOut>;
  /** Pass as `cursor` for the next page; null on the last page. */
  "next_cursor"?: string | null;
}

export interface Page_ServiceRecord_ {
  "items": Array<ServiceRecord>;
  /** Pass as `cursor` for the next page; null on the last page. */
  "next_cursor"?: string | null;
}

export interface Page_SessionOut_ {
  "items": Array<SessionOut>;
  /** Pass as `cursor` for the next page; null on the last page. */
  "next_cursor"?: string | null;
}

export interface Page_StaffActivityItem_ {
  "items": Array<StaffActivityItem>;
  /** Pass as `cursor` for the next page; null on the last page. */
  "next_cursor"?: string | null;
}

export interface Page_StaffAttendanceOut_ {
  "items": Array<StaffAttendanceOut>;
  /** Pass as `cursor` for the next page; null on the last page. */
  "next_cursor"?: string | null;
}

export interface Page_StaffCaseItem_ {
  "items": Array<StaffCaseItem>;
  /** Pass as `cursor` for the next page; null on the last page. */
  "next_cursor"?: string | null;
}

export interface Page_StaffEnrolmentOut_ {
  "items": Array<StaffEnrolmentOut>;
  /** Pass as `cursor` for the next page; null on the last page. */
  "next_cursor"?: string | null;
}

export interface Page_StaffInspectionOut_ {
  "items": Array<StaffInspectionOut>;
  /** Pass as `cursor` for the next page; null on the last page. */
  "next_cursor"?: string | null;
}

export interface Page_StaffVolunteer_ {
  "items": Array<StaffVolunteer>;
  /** Pass as `cursor` for the next page; null on the last page. */
  "next_cursor"?: string | null;
}

export interface Page_StudioOut_ {
  "items": Array<StudioOut>;
  /** Pass as `cursor` for the next page; null on the last page. */
  "next_cursor"?: string | null;
}

export interface Page_SupervisedMediation_ {
  "items": Array<SupervisedMediation>;
  /** Pass as `cursor` for the next page; null on the last page. */
  "next_cursor"?: string | null;
}

export interface Page_TeamOut_ {
  "items": Array<TeamOut>;
  /** Pass as `cursor` for the next page; null on the last page. */
  "next_cursor"?: string | null;
}

export interface PartyName {
  "role": PartyRole;
  "name": string;
  "consent": Consent;
}

export interface PartyOut {
  "id": string;
  "role": PartyRole;
  "name": string;
  "consent": Consent;
  "consent_at": string | null;
  "decline_reason": string | null;
  /** Masked, e.g. `139****5678`. A party sees only their own; the mediator and supervisors see every party's. Never in full. */
  "phone": string | null;
  /** The agreement version this party confirmed. */
  "confirmed_version": number;
  "is_you": boolean;
}

export type PartyRole = "applicant" | "respondent";

export interface PersonOut {
  "id": string;
  "nickname"?: string | null;
}

export interface PhoneBinding {
  /** The code from the getPhoneNumber button (`e.detail.code`). */
  "code": string;
}

/** Where the phone says it is, with the accuracy wx.getLocation reports. */
export interface PhoneLocationIn {
  /** Latitude in degrees. */
  "lat": number;
  /** Longitude in degrees. */
  "lng": number;
  /** `gcj02` (what wx.getLocation gives by default) or `wgs84`. */
  "coord": "gcj02" | "wgs84";
  /** Horizontal accuracy in metres (`accuracy` from wx.getLocation). */
  "accuracy_m": number;
}

/** Where the phone was at check-in or check-out (stored in WGS-84). */
export interface PlaceAt {
  "at": string;
  "location": PointOut;
  "accuracy_m": number;
  /** Metres outside the activity's fence; 0 inside. */
  "outside_fence_m": number;
}

export interface PointOut {
  "lat": number;
  "lng": number;
  "coord"?: "wgs84";
}

/** A GeoJSON Polygon: one closed ring of [lng, lat] positions (no holes). */
export interface PolygonIn {
  "type": "Polygon";
  /** One ring; its first and last positions are the same point. */
  "coordinates": Array<Array<Array<number>>>;
}

/** An open case nearby in the same category: support it instead of reporting again. */
export interface PossibleDuplicate {
  "id": string;
  "number": string;
  "state": CaseState;
  /** Metres from the submitted point. */
  "distance_m": number;
  "created_at": string;
  "supporters": number;
  /** The first 40 characters of the description. */
  "summary": string;
}

/** An RFC 9457 problem detail, as every error of this API is shaped. */
export interface Problem {
  /** URI naming the problem type; derived from `code`. */
  "type": string;
  /** Short summary in the caller's language. */
  "title": string;
  /** The HTTP status code. */
  "status": number;
  /** What happened, in the caller's language. */
  "detail": string;
  /** Stable machine-readable code, e.g. `auth.token_expired`. */
  "code": string;
  /** The request path. */
  "instance"?: string | null;
  /** Quote this when reporting a problem. */
  "request_id"?: string | null;
  [key: string]: unknown;
}

export interface Rate {
  /** numerator / denominator, 0..1 rounded to 4 decimals; null when the denominator is 0. */
  "rate": number | null;
  "numerator": number;
  "denominator": number;
}

export interface RatingIn {
  /** 1 (very dissatisfied) to 5 (very satisfied). */
  "rating": number;
  "comment"?: string | null;
}

export type RedemptionChannel = "app" | "counter";

export interface RedemptionCreate {
  /** The reward's id. */
  "reward": string;
  /** The service center to pick it up at. */
  "center": string;
  "quantity"?: number;
}

export interface RedemptionOut {
  "id": string;
  "reward": RewardBrief;
  "center": CenterBrief;
  "quantity": number;
  "unit_price": number;
  "points_total": number;
  "channel": RedemptionChannel;
  "state": RedemptionState;
  /** Six digits to read out at the counter; null once no longer pending. */
  "pickup_code": string | null;
  /** Show as a QR code for staff to scan; null once no longer pending. */
  "qr_payload": string | null;
  /** Pick it up before this, or it expires. */
  "expires_at": string;
  "created_at": string;
  "fulfilled_at": string | null;
  "cancelled_at": string | null;
  "expired_at": string | null;
}

export type RedemptionState = "pending" | "fulfilled" | "cancelled" | "expired";

/** Where a dispute goes when mediation does not settle it. */
export type Referral = "court" | "labour_arbitration" | "labour_inspection" | "consumer_association" | "housing_authority" | "legal_aid" | "other";

export interface RefreshRequest {
  "refresh_token": string;
}

export interface RegionBrief {
  "code": string;
  "name": string;
  "name_en"?: string | null;
}

/** A new region under `parent`; its code is `<parent>.<label>`. */
export interface RegionCreate {
  /** Code of the parent region. */
  "parent": string;
  /** Last part of the new code: lower-case letters, digits, underscore. */
  "label": string;
  /** Must be the parent's child level; derived from the parent if omitted. */
  "level"?: RegionLevel | null;
  "name": string;
  "name_en"?: string | null;
  /** GeoJSON Polygon or MultiPolygon, in the system named by `coord`. */
  "boundary"?: Record<string, unknown> | null;
}

/** A region with the regions above it and its direct children. */
export interface RegionDetail {
  /** The region's path, e.g. `gz.tianhe.shipai`. */
  "code": string;
  "name": string;
  "name_en"?: string | null;
  "level": RegionLevel;
  /** From the city down to the parent. */
  "ancestors": Array<RegionSummary>;
  /** Direct children, ordered by code. */
  "children": Array<RegionSummary>;
  /** Whether the region has a boundary polygon. */
  "has_boundary": boolean;
  /** GeoJSON Polygon or MultiPolygon in WGS-84; only with `include=boundary`. */
  "boundary"?: Record<string, unknown> | null;
}

/** Figures of one region for the period [from, to): the report and complaint cases */
export interface RegionFigures {
  "code": string;
  "name": string;
  "name_en": string | null;
  "level": RegionLevel;
  /** Reports and complaints created in the period (mediations are counted apart, in `mediation`). */
  "cases": number;
  /** Numerator: cases whose current round was accepted by its response deadline. Denominator: cases whose current round was accepted (any state but submitted and reopened, with an acceptance time), plus cases waiting for acceptance (submitted or reopened) whose response deadline has passed by now. A reopened case counts by its new round (it gets fresh deadlines); cases rejected without ever being accepted are left out. */
  "response_rate": Rate;
  /** Numerator: cases whose latest resolution came by their resolution deadline. Denominator: cases with a resolution standing (resolved or closed after one), plus open cases (submitted, accepted, in progress, reopened) without one whose resolution deadline has passed by now. */
  "on_time_resolution_rate": Rate;
  /** Numerator: cases rated 4 or 5. Denominator: cases with a rating. */
  "satisfaction_rate": Rate;
  /** Numerator: cases reopened at least once. Denominator: cases resolved at least once (resolved now, or reopened since). */
  "reopen_rate": Rate;
  /** Cases open now whose current deadline has passed: the response deadline while submitted or reopened, the resolution deadline while accepted or in progress. */
  "overdue_now": number;
  /** Cases created in the period, per channel. */
  "by_channel": ChannelCounts;
  "mediation": MediationFigures;
}

export type RegionLevel = "city" | "district" | "street" | "community" | "grid";

/** A region without its geometry. */
export interface RegionSummary {
  /** The region's path, e.g. `gz.tianhe.shipai`. */
  "code": string;
  "name": string;
  "name_en"?: string | null;
  "level": RegionLevel;
}

/** Fields to change; a field left out stays as it is, `null` clears `name_en`/`boundary`. */
export interface RegionUpdate {
  "name"?: string;
  "name_en"?: string | null;
  /** GeoJSON Polygon or MultiPolygon, in the system named by `coord`. */
  "boundary"?: Record<string, unknown> | null;
}

/** How a resident reached staff who register the case for them. */
export type RegisterChannel = "phone" | "counter";

export interface RejectIn {
  /** Why: the volunteer sees it. */
  "note": string;
}

export type RejectReason = "duplicate" | "out_of_scope" | "insufficient_information" | "not_government_matter" | "other";

export interface ReopenIn {
  "reason": string;
}

/** A one-click report (随手拍): what, where, and up to 9 photos or videos. */
export interface ReportCreate {
  /** The category's id or its code. */
  "category": string;
  "description": string;
  "location": LocationIn;
  /** What the resident calls the place (optional). */
  "address"?: string | null;
  /** Uploads (purpose `case_photo` or `case_video`) in display order. */
  "upload_ids"?: Array<string>;
  /** Hide the resident's identity from staff. */
  "anonymous"?: boolean;
}

/** The resident a case is for: shown to them, and to staff when they submitted it. */
export interface ReporterOut {
  "id": string;
  "nickname"?: string | null;
  /** Masked, e.g. `138****5678`. */
  "phone"?: string | null;
}

/** The other side of the dispute, as the applicant knows them. */
export interface RespondentIn {
  /** What the applicant calls them. */
  "name": string;
  /** Mainland mobile number. Stored encrypted; never shown to the applicant again, and to the mediator only masked. */
  "phone": string;
}

export interface RestockIn {
  /** The service center's id. */
  "center": string;
  /** Items added (negative: written off, never below what is reserved). */
  "add": number;
}

/** The answer to one checklist item. */
export interface ResultIn {
  /** The checklist item's code. */
  "item": string;
  /** true: the item passed; false: a problem was found. */
  "ok": boolean;
  /** What was found (optional). */
  "note"?: string | null;
  /** Photos of a reported problem: uploads of purpose `case_photo` or `case_video`, as for a report. Only on an item that is reported. */
  "upload_ids"?: Array<string>;
  /** File the failed item as a report in the case engine; default true when `ok` is false. Must not be true on a passed item. */
  "report"?: boolean | null;
}

export interface ResultOut {
  "item": string;
  /** The item as the checklist names it (the code if retired). */
  "label": string;
  "label_en": string;
  "ok": boolean;
  "note": string | null;
  "upload_ids": Array<string>;
  /** Whether the item was filed as a report. */
  "report": boolean;
  /** The report it became, if it was filed. */
  "finding": FindingOut | null;
}

export interface ReviewReason {
  /** Shown to the volunteer. */
  "reason": string;
}

export interface RewardBrief {
  "id": string;
  "name": string;
  "name_en": string;
}

export interface RewardCreate {
  "name": string;
  "name_en": string;
  "description"?: string;
  /** Points per item. */
  "price": number;
  /** An upload of purpose `reward_photo` (JPEG, PNG, WebP or HEIC). */
  "photo_upload_id"?: string | null;
  /** Code of the region whose service centers may stock it; you must be admin there. */
  "region": string;
  /** Per-member limit; null: no limit. */
  "limit"?: LimitIn | null;
  /** Redeemable from; null: now. */
  "active_from"?: string | null;
  /** Redeemable until; null: open. */
  "active_until"?: string | null;
  "active"?: boolean;
}

export interface RewardOut {
  "id": string;
  "name": string;
  "name_en": string;
  "description": string;
  "price": number;
  /** Short-lived URL of the photo. */
  "photo_url"?: string | null;
  "region": string;
  "limit": LimitOut | null;
  "active_from": string | null;
  "active_until": string | null;
  "active": boolean;
}

/** Fields to change; a field left out stays as it is. The region never changes. */
export interface RewardUpdate {
  "name"?: string;
  "name_en"?: string;
  "description"?: string;
  "price"?: number;
  "photo_upload_id"?: string | null;
  "limit"?: LimitIn | null;
  "active_from"?: string | null;
  "active_until"?: string | null;
  "active"?: boolean;
}

export type Role = "grid_worker" | "community_staff" | "mediator" | "department_handler" | "admin";

export interface RoleGrantCreate {
  "user_id"?: string | null;
  "openid"?: string | null;
  "role": Role;
  "region_code": string;
}

export interface RoleGrantOut {
  "id": string;
  "user_id": string;
  "nickname": string | null;
  "role": Role;
  "region_code": string;
  "created_at": string;
}

export interface RoleOut {
  "role": Role;
  "region_code": string;
  "region_name": string;
}

export interface RosterVolunteer {
  "id": string;
  /** The volunteer number, e.g. `V2026-0000123`. */
  "number": string | null;
  "real_name": string;
}

/** Where a dispute can go besides mediation (advice, or the referral at the end). */
export interface RouteOut {
  "route": Referral;
  /** Where to go, in Chinese. */
  "name": string;
  "name_en": string;
  /** What to do there, in Chinese. */
  "how": string;
  "how_en": string;
}

/** What the volunteer's phone scanned (or the digits typed) and where it is. */
export interface ScanIn {
  /** The scanned QR text (`shanzhi:checkin:<activity>:<digits>`), or the six digits typed from the screen. */
  "code": string;
  "location": PhoneLocationIn;
}

export interface ServiceCenterCreate {
  /** Stable code: lower-case letters, digits, _ -. */
  "code": string;
  "name": string;
  "name_en": string;
  /** Code of the community it serves. */
  "region": string;
  "location": LocationIn;
  "address": string;
  "opening_hours"?: string | null;
  "active"?: boolean;
}

export interface ServiceCenterOut {
  "id": string;
  "code": string;
  "name": string;
  "name_en": string;
  /** Code of the community it serves. */
  "region": string;
  "location": PointOut;
  "address": string;
  "opening_hours": string | null;
  "active": boolean;
}

/** Fields to change; a field left out stays as it is. Code and community never change. */
export interface ServiceCenterUpdate {
  "name"?: string;
  "name_en"?: string;
  "location"?: LocationIn;
  "address"?: string;
  "opening_hours"?: string | null;
  "active"?: boolean;
}

/** One verified attendance: what the volunteer did, how long, and what it paid. */
export interface ServiceRecord {
  /** The attendance. */
  "id": string;
  "activity": ActivityBrief;
  "checked_in_at": string;
  "checked_out_at": string | null;
  "minutes": number;
  "points": number;
  "verified_at": string;
}

/** A session to schedule: when, and where (a place, or for an online session a meeting */
export interface SessionCreate {
  /** When it starts (in the future). */
  "starts_at": string;
  /** `in_person` or `online`. */
  "mode": SessionMode;
  /** Required in person: where the parties meet. Online: the meeting link or how to join (optional). */
  "place"?: string | null;
}

export type SessionMode = "in_person" | "online";

/** A session as the viewer may see it: the minutes only for the mediator and the */
export interface SessionOut {
  "id": string;
  "mediation_id": string;
  "starts_at": string;
  "mode": SessionMode;
  "place": string | null;
  /** `scheduled`, `held` or `cancelled`. */
  "state": SessionState;
  /** The parties present (once held). */
  "attended": Array<AttendeeOut>;
  /** The private minutes: only for the mediator and supervising admins; always null for the parties. */
  "minutes": string | null;
  "created_at": string;
  "updated_at": string | null;
}

/** What happened at a session: who of the parties came, and the minutes. */
export interface SessionRecord {
  /** Ids of the parties present (from the parties of this mediation); may be empty when nobody came. */
  "attended": Array<string>;
  /** The minutes: seen only by the mediator and the supervising admins. */
  "minutes": string;
}

export type SessionState = "scheduled" | "held" | "cancelled";

/** What to change in a scheduled session; a field left out stays as it is. Send */
export interface SessionUpdate {
  /** A new start (in the future). */
  "starts_at"?: string;
  "mode"?: SessionMode;
  /** A new place or meeting link; null clears it (online sessions only). */
  "place"?: string | null;
  /** `cancelled` to call the session off. */
  "state"?: "cancelled";
}

/** What a volunteer can offer; the app shows each as a tag. */
export type Skill = "patrol" | "first_aid" | "fire_safety" | "legal" | "mediation" | "elderly_care" | "tutoring" | "driving" | "translation" | "other";

export type Specialty = "legal" | "labour" | "family" | "property" | "neighbourhood";

/** What staff may do to a case from the workbench. */
export type StaffAction = "accept" | "assign" | "start" | "resolve" | "reject" | "escalate" | "comment";

export interface StaffActionBody {
  /** The case's version as the staff member saw it. */
  "version": number;
  /** Shown on the timeline; required to resolve, comment, reject `other`. */
  "note"?: string | null;
  /** `assign`: who takes the case. */
  "assignee_id"?: string | null;
  /** `reject`: why. */
  "reason"?: RejectReason | null;
  /** `resolve`: photos of the result (uploads with purpose `resolution_photo`). */
  "upload_ids"?: Array<string>;
}

/** An activity in the staff list. */
export interface StaffActivityItem {
  "id": string;
  "type": ActivityType;
  "title": string;
  "state": ActivityState;
  "place_name": string;
  "starts_at": string;
  "ends_at": string;
  /** The community that organises and certifies. */
  "organiser": RegionBrief;
  "team": TeamBrief | null;
  "capacity": number;
  "enrolled": number;
  "waitlisted": number;
  "places_left": number;
  "created_at": string;
}

/** One activity as its organisers see it: the detail and how it is going. */
export interface StaffActivityOut {
  "id": string;
  "type": ActivityType;
  "title": string;
  "state": ActivityState;
  "place_name": string;
  "starts_at": string;
  "ends_at": string;
  /** The community that organises and certifies. */
  "organiser": RegionBrief;
  /** Only this team's members may enrol. */
  "team": TeamBrief | null;
  "capacity": number;
  /** Capacity minus the volunteers holding a place. */
  "places_left": number;
  /** Volunteers waiting for a place. */
  "waitlisted": number;
  /** Points for verified attendance (the ledger's rule); null: none. */
  "reward_points": number | null;
  /** From the location given; null without one. */
  "distance_m": number | null;
  /** The caller's enrolment, if any. */
  "my_enrolment": MyEnrolment | null;
  "description": string | null;
  "address": string | null;
  "location": PointOut;
  "fence": FenceOut;
  /** Volunteers holding a place. */
  "enrolled": number;
  /** Why it was cancelled; null otherwise. */
  "cancel_reason": string | null;
  "published_at": string | null;
  "cancelled_at": string | null;
  "finished_at": string | null;
  "enrolments": EnrolmentCounts;
  "attendance": AttendanceCounts;
  "created_at": string;
  "updated_at": string | null;
}

export interface StaffAttendanceDetail {
  "id": string;
  "volunteer": AttendanceVolunteer;
  "activity": ActivityBrief;
  "state": AttendanceState;
  "flags": Array<FlagOut>;
  "check_in": PlaceAt;
  "check_out"?: PlaceAt | null;
  "minutes"?: number | null;
  "points"?: number | null;
  "verified_at"?: string | null;
  "reviewed_at"?: string | null;
  "review_note"?: string | null;
  /** The uploaded track, oldest point first. */
  "track": Array<TrackPointOut>;
}

/** An attendance as staff review it. */
export interface StaffAttendanceOut {
  "id": string;
  "volunteer": AttendanceVolunteer;
  "activity": ActivityBrief;
  "state": AttendanceState;
  "flags": Array<FlagOut>;
  "check_in": PlaceAt;
  "check_out"?: PlaceAt | null;
  "minutes"?: number | null;
  "points"?: number | null;
  "verified_at"?: string | null;
  "reviewed_at"?: string | null;
  "review_note"?: string | null;
}

/** A case as the workbench lists it. The reporter is never shown here. */
export interface StaffCaseItem {
  "id": string;
  /** Human-readable number, e.g. `RPT-20261122-000123`. */
  "number": string;
  "kind": CaseKind;
  "category": CategoryRef;
  "state": CaseState;
  "priority": string;
  "channel": Channel;
  /** The grid where the case is. */
  "grid_code": string;
  /** The region whose staff handle it now. */
  "queue_code": string;
  /** How many times it moved up a level. */
  "escalation_level": number;
  "assignee": UserRef | null;
  /** The deadline that matters now: the response deadline while submitted or reopened, the resolution deadline while accepted or in progress; null otherwise. */
  "deadline": string | null;
  /** The deadline above has passed. */
  "overdue": boolean;
  "created_at": string;
  /** The first 60 characters of the description. */
  "summary": string;
  /** Residents who added their “+1”. */
  "supporters": number;
  /** Send it back with an action (optimistic locking). */
  "version": number;
}

/** An enrolment on an activity's roster. */
export interface StaffEnrolmentOut {
  "id": string;
  "volunteer": RosterVolunteer;
  "state": EnrolmentState;
  "waitlist_position": number | null;
  "queued_at": string;
  "promoted_at": string | null;
  "cancelled_at": string | null;
  "cancelled_by": string | null;
  /** null: never checked in. */
  "attendance_state": AttendanceState | null;
}

/** An inspection as the activity's hosts see it: with the volunteer who filed it. */
export interface StaffInspectionOut {
  "id": string;
  "activity_id": string;
  "address": string;
  "location": PointOut;
  "results": Array<ResultOut>;
  "created_at": string;
  "volunteer": InspectorOut;
}

/** A volunteer as community staff see them: the phone masked, never in full. */
export interface StaffVolunteer {
  "id": string;
  "state": VolunteerState;
  "number": string | null;
  "real_name": string;
  /** WeChat nickname. */
  "nickname": string | null;
  /** Masked, e.g. `138****5678`. */
  "phone": string | null;
  "skills": Array<Skill>;
  "availability": Availability;
  "community": RegionBrief;
  "review_reason": string | null;
  "reviewed_at": string | null;
  "service_minutes": number;
  "service_hours": number;
  "activities_attended": number;
  "created_at": string;
  "updated_at": string | null;
}

export interface StaffVolunteerDetail {
  "id": string;
  "state": VolunteerState;
  "number": string | null;
  "real_name": string;
  /** WeChat nickname. */
  "nickname": string | null;
  /** Masked, e.g. `138****5678`. */
  "phone": string | null;
  "skills": Array<Skill>;
  "availability": Availability;
  "community": RegionBrief;
  "review_reason": string | null;
  "reviewed_at": string | null;
  "service_minutes": number;
  "service_hours": number;
  "activities_attended": number;
  "created_at": string;
  "updated_at": string | null;
  /** Teams the volunteer is in (`leader`: leads it). */
  "teams": Array<MyTeam>;
}

export interface StockOut {
  "reward": string;
  "center": string;
  /** Items at the center, reserved ones included. */
  "on_hand": number;
  /** Items reserved for pickup. */
  "reserved": number;
  /** Items still free to redeem: on_hand - reserved. */
  "left": number;
}

export interface StudioChoice {
  /** One of the studios that fit the dispute. */
  "studio_id": string;
}

/** The mediation after the applicant's choice. */
export interface StudioChoiceOut {
  /** The mediation's (case's) id. */
  "id": string;
  "number": string;
  "state": MediationState;
  "preferred_studio": StudioRef;
  /** The studio of the assigned mediator. */
  "studio": StudioRef | null;
  /** Once a mediator has been assigned. */
  "mediator": MediatorCard | null;
  /** This choice assigned a mediator at once. */
  "assigned_now": boolean;
}

export interface StudioCreate {
  /** Unique within its area. */
  "name": string;
  "name_en"?: string | null;
  /** Shown to residents. */
  "description"?: string | null;
  /** The kinds of disputes it takes. */
  "specialties": Array<Specialty>;
  /** Code of the region it serves (cases located within it); it must lie in a region you administer. */
  "area": string;
}

export interface StudioOut {
  "id": string;
  "name": string;
  "name_en": string | null;
  "description": string | null;
  "specialties": Array<Specialty>;
  "area": AreaRef;
  "active": boolean;
  /** Its active mediators. */
  "mediators": number;
  /** Cases its active mediators carry now. */
  "load": number;
  /** Cases its active mediators may carry at once, together. */
  "capacity": number;
  "created_at": string;
  "updated_at": string | null;
}

export interface StudioRef {
  "id": string;
  "name": string;
  "name_en": string | null;
}

/** Fields to change; a field left out stays as it is. The area never changes. */
export interface StudioUpdate {
  "name"?: string;
  "name_en"?: string | null;
  "description"?: string | null;
  "specialties"?: Array<Specialty>;
  /** false: its mediators get no new cases and residents no longer see it. */
  "active"?: boolean;
}

/** The submitted case, and open cases nearby that may be the same problem. */
export interface SubmissionOut {
  "id": string;
  /** Human-readable number, e.g. `RPT-20261122-000123`. */
  "number": string;
  "kind": CaseKind;
  "state": CaseState;
  /** Send back to staff actions (optimistic locking). */
  "version": number;
  "category": CategoryBrief;
  "description": string;
  "location": PointOut;
  "address": string | null;
  "grid": RegionBrief;
  /** The region whose staff handle it now. */
  "queue": RegionBrief;
  "channel": Channel;
  "anonymous": boolean;
  /** Null to staff when the case is anonymous, or staff registered it for a resident (whether or not the number belongs to an account). */
  "reporter"?: ReporterOut | null;
  /** Masked: the number staff registered the case with, else the reporter's bound phone; hidden when anonymous. */
  "contact_phone"?: string | null;
  /** Whom a complaint is about. */
  "target"?: TargetOut | null;
  "priority": string;
  "escalation_level": number;
  "assignee_id": string | null;
  /** Residents who added their +1. */
  "supporters": number;
  "response_due_at": string;
  "resolution_due_at": string;
  "accepted_at": string | null;
  "resolved_at": string | null;
  "closed_at": string | null;
  "rejected_reason": string | null;
  "rating": number | null;
  "rating_comment": string | null;
  "reopen_count": number;
  "created_at": string;
  "updated_at": string | null;
  "attachments": Array<AttachmentOut>;
  "timeline": Array<CaseEventOut>;
  /** Open cases of the same category within 100 m from the last 3 days, nearest first, at most 5. */
  "possible_duplicates": Array<PossibleDuplicate>;
}

/** A mediation as its supervisors list it: no parties' contact details, no minutes. */
export interface SupervisedMediation {
  /** The mediation's (case's) id. */
  "id": string;
  /** e.g. `MED-20261122-000012`. */
  "number": string;
  "dispute_type": DisputeType;
  "state": MediationState;
  /** The grid where the dispute is. */
  "place_code": string;
  /** The applicant's choice, if any. */
  "preferred_studio": StudioRef | null;
  "mediator": MediatorRef | null;
  "created_at": string;
  /** Whole days from the request to now (or to its end). */
  "days_open": number;
  /** The time limit of the mediation. */
  "due_at": string;
  /** Still open and past its time limit. */
  "overdue": boolean;
  "escalated": boolean;
  "escalated_at": string | null;
}

export interface SupportOut {
  /** Residents who support the case, counting the caller. */
  "supporters": number;
}

export interface TargetOut {
  "type": ComplaintTarget;
  "name": string;
}

export interface TeamBrief {
  "id": string;
  "name": string;
}

export interface TeamCreate {
  /** Code of the team's community. */
  "community": string;
  /** Unique in the community. */
  "name": string;
  "description"?: string | null;
  /** An approved volunteer to lead it; they join as a member. */
  "leader_id"?: string | null;
}

export interface TeamDetail {
  "id": string;
  "community": RegionBrief;
  "name": string;
  "description": string | null;
  "leader": TeamPerson | null;
  "members_count": number;
  "active": boolean;
  "created_at": string;
  /** The leader first, then by joining. */
  "members": Array<TeamMemberOut>;
}

export interface TeamLeaderSet {
  /** A member of the team; null leaves the team without a leader. */
  "volunteer_id": string | null;
}

export interface TeamMemberAdd {
  "volunteer_id": string;
}

export interface TeamMemberOut {
  "volunteer_id": string;
  "number": string | null;
  "real_name": string;
  "leader": boolean;
  "joined_at": string;
}

export interface TeamOut {
  "id": string;
  "community": RegionBrief;
  "name": string;
  "description": string | null;
  "leader": TeamPerson | null;
  "members_count": number;
  "active": boolean;
  "created_at": string;
}

export interface TeamPerson {
  "volunteer_id": string;
  "number": string | null;
  "real_name": string;
}

export interface TimelineEntryOut {
  "seq": number;
  "action": string;
  "from_state": string | null;
  "to_state": string | null;
  /** Who acted, as a role: `applicant`, `respondent`, `mediator`, `supervisor` or `system`. Never a name or contact detail. */
  "by": string;
  "note": string | null;
  /** What the step was, e.g. `{"step": "consent", "consent": "accepted"}`. */
  "data": Record<string, unknown>;
  "at": string;
}

export interface TokenPair {
  "access_token": string;
  "token_type"?: string;
  /** Seconds until the access token expires. */
  "expires_in": number;
  "expires_at": string;
  /** Single use: each refresh returns a new one. */
  "refresh_token": string;
  "refresh_expires_at": string;
  "user": Me;
}

/** A batch of the patrol's track, as the phone recorded it (sent again: nothing added). */
export interface TrackIn {
  "points": Array<TrackPointIn>;
}

export interface TrackOut {
  /** Points of this attendance's track stored in total. */
  "stored": number;
  /** Of this batch, the points that were new. */
  "added": number;
  /** The attendance's doubtful signals so far. */
  "flags": Array<FlagOut>;
  "will_be_reviewed": boolean;
}

export interface TrackPointIn {
  /** When the phone took this point (with offset). */
  "at": string;
  /** Latitude in degrees. */
  "lat": number;
  /** Longitude in degrees. */
  "lng": number;
  /** `gcj02` (as wx.getLocation gives it) or `wgs84`. */
  "coord": "gcj02" | "wgs84";
  /** Accuracy in metres. */
  "accuracy_m"?: number | null;
}

export interface TrackPointOut {
  "at": string;
  "location": PointOut;
  "accuracy_m"?: number | null;
}

export type TransactionKind = "award" | "reverse" | "hold" | "capture" | "release" | "expire";

/** The file the phone is about to upload: what it is for, its type and its size. */
export interface UploadCreate {
  /** `case_photo`, `resolution_photo`, `evidence`: JPEG, PNG, WebP or HEIC up to 10 MB; `case_video`: MP4 up to 50 MB. */
  "purpose": UploadPurpose;
  /** MIME type of the file, e.g. `image/jpeg`; the upload must use it too. */
  "content_type": string;
  /** Exact size of the file in bytes (`size` from wx.chooseMedia). A larger file is refused by storage, a different one when a case names the upload. */
  "size": number;
}

/** One of the caller's uploads and where it stands. */
export interface UploadOut {
  "id": string;
  "purpose": UploadPurpose;
  "content_type": string;
  /** The declared size in bytes. */
  "size": number;
  /** `pending`: not posted yet; `uploaded`: the file is in storage, not yet named by a case; `attached`: part of a case; `deleted`: never used and removed. */
  "state": "pending" | "uploaded" | "attached" | "deleted";
  /** The upload form works until this time. */
  "expires_at": string;
}

export type UploadPurpose = "case_photo" | "case_video" | "resolution_photo" | "evidence" | "reward_photo";

/** Where and how to post the file: `wx.uploadFile({url, formData: fields, name: "file"})`. */
export interface UploadTicket {
  /** The upload's id, named later in a report. */
  "id": string;
  /** Where to POST the multipart form. */
  "url": string;
  /** Form fields to send unchanged (`formData`); the file goes in `file`. */
  "fields": Record<string, string>;
  /** The object key the file is stored under. */
  "key": string;
  /** The form must be posted before this time. */
  "expires_at": string;
  /** Largest file accepted: the declared size, in bytes. */
  "max_size": number;
}

export interface UserRef {
  "id": string;
  "nickname": string | null;
}

/** How the caller stands to a mediation (what they may see follows from it). */
export type Viewer = "applicant" | "respondent" | "mediator" | "supervisor";

/** The caller's registration: its state, what they offer, and what they have done. */
export interface VolunteerProfile {
  "id": string;
  /** `pending` (waiting for the community), `approved`, `rejected` (see `review_reason`; sign up again to re-apply) or `suspended`. */
  "state": VolunteerState;
  /** Volunteer number, issued on approval. */
  "number": string | null;
  /** Why the community rejected or suspended. */
  "review_reason": string | null;
  "reviewed_at": string | null;
  "real_name": string;
  "skills": Array<Skill>;
  "availability": Availability;
  /** The home community. */
  "community": RegionBrief;
  "teams": Array<MyTeam>;
  /** Verified service time, in minutes. */
  "service_minutes": number;
  /** The same, in hours with one decimal. */
  "service_hours": number;
  /** Activities with verified attendance. */
  "activities_attended": number;
  /** Points available to spend. */
  "points_available": number;
  "created_at": string;
  "updated_at": string | null;
}

export interface VolunteerSignUp {
  /** Real name, as on the ID. */
  "real_name": string;
  "skills"?: Array<Skill>;
  "availability"?: Availability;
  /** Code of the home community, e.g. `gz.tianhe.shipai.gangding` (`GET /v1/regions/locate` finds it from the phone's location). */
  "community": string;
}

export type VolunteerState = "pending" | "approved" | "rejected" | "suspended";

export interface WechatLogin {
  /** The code from `wx.login()` (single use). */
  "code": string;
}

export interface WithdrawIn {
  /** Why (optional). */
  "reason"?: string | null;
}

export class ApiError extends Error {
  constructor(public readonly status: number, public readonly problem: Problem) {
    super(problem.detail);
  }
}

export interface ClientOptions {
  baseUrl: string;
  /** The access token to send, if logged in. */
  accessToken?: () => string | undefined;
  /** zh-CN (default) or en: the language of error messages. */
  language?: "zh-CN" | "en";
}

type Query = Record<string, string | number | boolean | undefined | null>;

function buildUrl(base: string, path: string, query?: Query): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null) {
      parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`);
    }
  }
  return base + path + (parts.length ? `?${parts.join("&")}` : "");
}

function call<T>(
  options: ClientOptions,
  method: string,
  path: string,
  extra: { query?: Query; body?: unknown; headers?: Record<string, string> } = {},
): Promise<T> {
  const header: Record<string, string> = {
    "Accept-Language": options.language ?? "zh-CN",
    ...(extra.headers ?? {}),
  };
  const token = options.accessToken?.();
  if (token) header["Authorization"] = `Bearer ${token}`;
  if (extra.body !== undefined) header["Content-Type"] = "application/json";
  return new Promise<T>((resolve, reject) => {
    wx.request({
      url: buildUrl(options.baseUrl, path, extra.query),
      method,
      data: extra.body,
      header,
      success(result) {
        if (result.statusCode >= 200 && result.statusCode < 300) resolve(result.data as T);
        else reject(new ApiError(result.statusCode, result.data as Problem));
      },
      fail(error) {
        reject(new Error(error.errMsg));
      },
    });
  });
}

export function createClient(options: ClientOptions) {
  return {
    /** Health */
    health: (): Promise<Health> =>
      call<Health>(options, "GET", `/healthz`),
    /** Readiness */
    readiness: (): Promise<Health> =>
      call<Health>(options, "GET", `/readyz`),
    /** Login With Wechat */
    loginWithWechat: (body: WechatLogin): Promise<TokenPair> =>
      call<TokenPair>(options, "POST", `/v1/auth/wechat/login`, { body }),
    /** Refresh Tokens */
    refreshTokens: (body: RefreshRequest): Promise<TokenPair> =>
      call<TokenPair>(options, "POST", `/v1/auth/refresh`, { body }),
    /** Logout */
    logout: (body: RefreshRequest): Promise<void> =>
      call<void>(options, "POST", `/v1/auth/logout`, { body }),
    /** Get Me */
    getMe: (): Promise<Me> =>
      call<Me>(options, "GET", `/v1/me`),
    /** Bind Phone */
    bindPhone: (body: PhoneBinding): Promise<Me> =>
      call<Me>(options, "POST", `/v1/me/phone`, { body }),
    /** Grant Role */
    grantRole: (body: RoleGrantCreate): Promise<RoleGrantOut> =>
      call<RoleGrantOut>(options, "POST", `/v1/admin/role-grants`, { body }),
    /** List Role Grants */
    listRoleGrants: (params?: { "region"?: string | null; "cursor"?: string | null; "limit"?: number }): Promise<Page_RoleGrantOut_> =>
      call<Page_RoleGrantOut_>(options, "GET", `/v1/admin/role-grants`, { query: pick(params, ["region", "cursor", "limit"]) }),
    /** Revoke Role */
    revokeRole: (grantId: string): Promise<void> =>
      call<void>(options, "DELETE", `/v1/admin/role-grants/${encodeURIComponent(grantId)}`),
    /** Find the grid containing a point */
    locateGrid: (params: { "lat": number; "lng": number; "coord": "gcj02" | "wgs84" }): Promise<LocateResult> =>
      call<LocateResult>(options, "GET", `/v1/regions/locate`, { query: pick(params, ["lat", "lng", "coord"]) }),
    /** Read a region with its ancestors and children */
    getRegion: (code: string, params?: { "include"?: "boundary" | null }): Promise<RegionDetail> =>
      call<RegionDetail>(options, "GET", `/v1/regions/${encodeURIComponent(code)}`, { query: pick(params, ["include"]) }),
    /** Create a region under a parent */
    createRegion: (body: RegionCreate, params?: { "coord"?: "gcj02" | "wgs84" }): Promise<RegionDetail> =>
      call<RegionDetail>(options, "POST", `/v1/admin/regions`, { query: pick(params, ["coord"]), body }),
    /** Rename a region or replace its boundary */
    updateRegion: (code: string, body: RegionUpdate, params?: { "coord"?: "gcj02" | "wgs84" }): Promise<RegionDetail> =>
      call<RegionDetail>(options, "PATCH", `/v1/admin/regions/${encodeURIComponent(code)}`, { query: pick(params, ["coord"]), body }),
    /** Create or update grids from a GeoJSON FeatureCollection */
    importGrids: (body: GridFeatureCollection, params?: { "coord"?: "gcj02" | "wgs84" }): Promise<GridImportResult> =>
      call<GridImportResult>(options, "POST", `/v1/admin/regions/grids/import`, { query: pick(params, ["coord"]), body }),
    /** Report a problem (随手拍) with photos and its place */
    submitReport: (body: ReportCreate, params?: { "Idempotency-Key"?: string | null }): Promise<SubmissionOut> =>
      call<SubmissionOut>(options, "POST", `/v1/reports`, { headers: pick(params, ["Idempotency-Key"]) as Record<string, string>, body }),
    /** Complain about a department, property company or business */
    submitComplaint: (body: ComplaintCreate, params?: { "Idempotency-Key"?: string | null }): Promise<SubmissionOut> =>
      call<SubmissionOut>(options, "POST", `/v1/complaints`, { headers: pick(params, ["Idempotency-Key"]) as Record<string, string>, body }),
    /** List my reports and complaints */
    listMyCases: (params?: { "state"?: CaseState | null; "cursor"?: string | null; "limit"?: number }): Promise<Page_CaseListItem_> =>
      call<Page_CaseListItem_>(options, "GET", `/v1/me/cases`, { query: pick(params, ["state", "cursor", "limit"]) }),
    /** Read a case with its timeline and attachments */
    getCase: (caseId: string): Promise<CaseOut> =>
      call<CaseOut>(options, "GET", `/v1/cases/${encodeURIComponent(caseId)}`),
    /** Add my +1 to an open case */
    supportCase: (caseId: string): Promise<SupportOut> =>
      call<SupportOut>(options, "POST", `/v1/cases/${encodeURIComponent(caseId)}/support`),
    /** Rate a resolved case, which closes it */
    rateCase: (caseId: string, body: RatingIn): Promise<CaseOut> =>
      call<CaseOut>(options, "POST", `/v1/cases/${encodeURIComponent(caseId)}/rating`, { body }),
    /** Reopen a resolved or closed case */
    reopenCase: (caseId: string, body: ReopenIn): Promise<CaseOut> =>
      call<CaseOut>(options, "POST", `/v1/cases/${encodeURIComponent(caseId)}/reopen`, { body }),
    /** List the categories residents choose from */
    listCategories: (params?: { "kind"?: CaseKind | null }): Promise<Array<CategoryOut>> =>
      call<Array<CategoryOut>>(options, "GET", `/v1/categories`, { query: pick(params, ["kind"]) }),
    /** List every category, inactive ones included */
    listAllCategories: (params?: { "kind"?: CaseKind | null }): Promise<Array<CategoryOut>> =>
      call<Array<CategoryOut>>(options, "GET", `/v1/admin/categories`, { query: pick(params, ["kind"]) }),
    /** Add a category */
    createCategory: (body: CategoryCreate): Promise<CategoryOut> =>
      call<CategoryOut>(options, "POST", `/v1/admin/categories`, { body }),
    /** Change a category */
    updateCategory: (categoryId: string, body: CategoryUpdate): Promise<CategoryOut> =>
      call<CategoryOut>(options, "PATCH", `/v1/admin/categories/${encodeURIComponent(categoryId)}`, { body }),
    /** List Staff Cases */
    listStaffCases: (params?: { "state"?: Array<CaseState> | null; "kind"?: "report" | "complaint" | null; "category"?: string | null; "overdue"?: boolean | null; "assignee"?: "me" | string | null; "region"?: string | null; "queue"?: "mine" | null; "cursor"?: string | null; "limit"?: number }): Promise<Page_StaffCaseItem_> =>
      call<Page_StaffCaseItem_>(options, "GET", `/v1/staff/cases`, { query: pick(params, ["state", "kind", "category", "overdue", "assignee", "region", "queue", "cursor", "limit"]) }),
    /** Register Case */
    registerCase: (body: CaseRegistration, params?: { "Idempotency-Key"?: string | null }): Promise<CaseOut> =>
      call<CaseOut>(options, "POST", `/v1/staff/cases`, { headers: pick(params, ["Idempotency-Key"]) as Record<string, string>, body }),
    /** Act On Case */
    actOnCase: (caseId: string, action: StaffAction, body: StaffActionBody): Promise<CaseOut> =>
      call<CaseOut>(options, "POST", `/v1/staff/cases/${encodeURIComponent(caseId)}/${encodeURIComponent(action)}`, { body }),
    /** Get Case Stats */
    getCaseStats: (params?: { "region"?: string | null; "from"?: string | null; "to"?: string | null }): Promise<CaseStats> =>
      call<CaseStats>(options, "GET", `/v1/staff/stats`, { query: pick(params, ["region", "from", "to"]) }),
    /** Get a presigned form to upload a photo or video */
    createUpload: (body: UploadCreate): Promise<UploadTicket> =>
      call<UploadTicket>(options, "POST", `/v1/uploads`, { body }),
    /** Read one of my uploads */
    getUpload: (uploadId: string): Promise<UploadOut> =>
      call<UploadOut>(options, "GET", `/v1/uploads/${encodeURIComponent(uploadId)}`),
    /** Request mediation of a dispute (one-click mediation) */
    requestMediation: (body: MediationRequest, params?: { "Idempotency-Key"?: string | null }): Promise<MediationCreated> =>
      call<MediationCreated>(options, "POST", `/v1/mediations`, { headers: pick(params, ["Idempotency-Key"]) as Record<string, string>, body }),
    /** List my mediations */
    listMyMediations: (params?: { "state"?: MediationState | null; "cursor"?: string | null; "limit"?: number }): Promise<Page_MediationListItem_> =>
      call<Page_MediationListItem_>(options, "GET", `/v1/me/mediations`, { query: pick(params, ["state", "cursor", "limit"]) }),
    /** Read a mediation as I may see it */
    getMediation: (mediationId: string): Promise<MediationOut> =>
      call<MediationOut>(options, "GET", `/v1/mediations/${encodeURIComponent(mediationId)}`),
    /** Withdraw my mediation request */
    withdrawMediation: (mediationId: string, body: WithdrawIn | null): Promise<MediationOut> =>
      call<MediationOut>(options, "POST", `/v1/mediations/${encodeURIComponent(mediationId)}/withdraw`, { body }),
    /** Issue a new invitation code for a respondent */
    reissueInvitation: (mediationId: string, partyId: string): Promise<InvitationIssued> =>
      call<InvitationIssued>(options, "POST", `/v1/mediations/${encodeURIComponent(mediationId)}/respondents/${encodeURIComponent(partyId)}/invitation`),
    /** Read the mediation I am invited to */
    getMediationInvitation: (code: string): Promise<InvitationOut> =>
      call<InvitationOut>(options, "GET", `/v1/mediation-invitations/${encodeURIComponent(code)}`),
    /** Agree to mediation */
    acceptMediationInvitation: (code: string): Promise<InvitationOut> =>
      call<InvitationOut>(options, "POST", `/v1/mediation-invitations/${encodeURIComponent(code)}/accept`),
    /** Decline mediation */
    declineMediationInvitation: (code: string, body: DeclineIn | null): Promise<InvitationOut> =>
      call<InvitationOut>(options, "POST", `/v1/mediation-invitations/${encodeURIComponent(code)}/decline`, { body }),
    /** Open a mediation studio for an area */
    createMediationStudio: (body: StudioCreate): Promise<StudioOut> =>
      call<StudioOut>(options, "POST", `/v1/admin/mediation-studios`, { body }),
    /** The mediation studios of my regions */
    listMediationStudios: (params?: { "active"?: boolean | null; "area"?: string | null; "cursor"?: string | null; "limit"?: number }): Promise<Page_StudioOut_> =>
      call<Page_StudioOut_>(options, "GET", `/v1/admin/mediation-studios`, { query: pick(params, ["active", "area", "cursor", "limit"]) }),
    /** Change or close a mediation studio */
    updateMediationStudio: (studioId: string, body: StudioUpdate): Promise<StudioOut> =>
      call<StudioOut>(options, "PATCH", `/v1/admin/mediation-studios/${encodeURIComponent(studioId)}`, { body }),
    /** Register a user as a mediator (grants the mediator role) */
    createMediator: (body: MediatorCreate): Promise<MediatorOut> =>
      call<MediatorOut>(options, "POST", `/v1/admin/mediators`, { body }),
    /** The mediators of my regions, with their load */
    listMediators: (params?: { "studio_id"?: string | null; "active"?: boolean | null; "cursor"?: string | null; "limit"?: number }): Promise<Page_MediatorOut_> =>
      call<Page_MediatorOut_>(options, "GET", `/v1/admin/mediators`, { query: pick(params, ["studio_id", "active", "cursor", "limit"]) }),
    /** Change or deactivate a mediator */
    updateMediator: (mediatorId: string, body: MediatorUpdate): Promise<MediatorOut> =>
      call<MediatorOut>(options, "PATCH", `/v1/admin/mediators/${encodeURIComponent(mediatorId)}`, { body }),
    /** The mediation studios I may choose for a dispute here */
    listFittingStudios: (params: { "dispute_type": DisputeType; "lat": number; "lng": number; "coord"?: "gcj02" | "wgs84" }): Promise<FittingStudios> =>
      call<FittingStudios>(options, "GET", `/v1/mediation-studios`, { query: pick(params, ["dispute_type", "lat", "lng", "coord"]) }),
    /** Choose the studio for my mediation */
    chooseMediationStudio: (mediationId: string, body: StudioChoice): Promise<StudioChoiceOut> =>
      call<StudioChoiceOut>(options, "PUT", `/v1/mediations/${encodeURIComponent(mediationId)}/studio`, { body }),
    /** The mediations in the regions I supervise */
    listSupervisedMediations: (params?: { "state"?: Array<MediationState> | null; "cursor"?: string | null; "limit"?: number }): Promise<Page_SupervisedMediation_> =>
      call<Page_SupervisedMediation_>(options, "GET", `/v1/staff/mediations`, { query: pick(params, ["state", "cursor", "limit"]) }),
    /** Assign or reassign the mediator of a mediation */
    assignMediation: (mediationId: string, body: Assignment): Promise<SupervisedMediation> =>
      call<SupervisedMediation>(options, "POST", `/v1/staff/mediations/${encodeURIComponent(mediationId)}/assign`, { body }),
    /** The mediations assigned to me (mediators) */
    listMyMediationCases: (params?: { "state"?: Array<MediationState> | null; "cursor"?: string | null; "limit"?: number }): Promise<Page_MediatorCaseItem_> =>
      call<Page_MediatorCaseItem_>(options, "GET", `/v1/mediator/mediations`, { query: pick(params, ["state", "cursor", "limit"]) }),
    /** Schedule a mediation session (the mediator) */
    scheduleMediationSession: (mediationId: string, body: SessionCreate): Promise<SessionOut> =>
      call<SessionOut>(options, "POST", `/v1/mediations/${encodeURIComponent(mediationId)}/sessions`, { body }),
    /** List the sessions of a mediation */
    listMediationSessions: (mediationId: string, params?: { "cursor"?: string | null; "limit"?: number }): Promise<Page_SessionOut_> =>
      call<Page_SessionOut_>(options, "GET", `/v1/mediations/${encodeURIComponent(mediationId)}/sessions`, { query: pick(params, ["cursor", "limit"]) }),
    /** Reschedule or cancel a mediation session (the mediator) */
    updateMediationSession: (mediationId: string, sessionId: string, body: SessionUpdate): Promise<SessionOut> =>
      call<SessionOut>(options, "PATCH", `/v1/mediations/${encodeURIComponent(mediationId)}/sessions/${encodeURIComponent(sessionId)}`, { body }),
    /** Record attendance and the private minutes of a session (the mediator) */
    recordMediationSession: (mediationId: string, sessionId: string, body: SessionRecord): Promise<SessionOut> =>
      call<SessionOut>(options, "POST", `/v1/mediations/${encodeURIComponent(mediationId)}/sessions/${encodeURIComponent(sessionId)}/record`, { body }),
    /** Read the agreement on the table, or how the mediation ended */
    getMediationOutcome: (mediationId: string): Promise<OutcomeOut> =>
      call<OutcomeOut>(options, "GET", `/v1/mediations/${encodeURIComponent(mediationId)}/outcome`),
    /** Put an agreement to the parties (the mediator) */
    proposeMediationAgreement: (mediationId: string, body: AgreementIn): Promise<OutcomeOut> =>
      call<OutcomeOut>(options, "PUT", `/v1/mediations/${encodeURIComponent(mediationId)}/agreement`, { body }),
    /** Confirm the agreement as a party */
    confirmMediationAgreement: (mediationId: string, body: ConfirmIn): Promise<OutcomeOut> =>
      call<OutcomeOut>(options, "POST", `/v1/mediations/${encodeURIComponent(mediationId)}/agreement/confirm`, { body }),
    /** End a mediation without agreement, with a referral (the mediator) */
    endMediationWithoutAgreement: (mediationId: string, body: NoAgreementIn): Promise<OutcomeOut> =>
      call<OutcomeOut>(options, "POST", `/v1/mediations/${encodeURIComponent(mediationId)}/no-agreement`, { body }),
    /** My points: available, held and expiring soon */
    getPointsBalance: (): Promise<BalanceOut> =>
      call<BalanceOut>(options, "GET", `/v1/points/balance`),
    /** My points statement, newest first */
    listPointsEntries: (params?: { "cursor"?: string | null; "limit"?: number }): Promise<Page_EntryOut_> =>
      call<Page_EntryOut_>(options, "GET", `/v1/points/entries`, { query: pick(params, ["cursor", "limit"]) }),
    /** List the earning rules */
    listEarningRules: (): Promise<Array<EarningRuleOut>> =>
      call<Array<EarningRuleOut>>(options, "GET", `/v1/admin/points/earning-rules`),
    /** Set the earning rules */
    replaceEarningRules: (body: EarningRulesIn): Promise<Array<EarningRuleOut>> =>
      call<Array<EarningRuleOut>>(options, "PUT", `/v1/admin/points/earning-rules`, { body }),
    /** Rewards at a service center, or at the centers near me */
    listRewards: (params?: { "center"?: string | null; "lat"?: number | null; "lng"?: number | null; "coord"?: "gcj02" | "wgs84"; "centers"?: number }): Promise<Catalog> =>
      call<Catalog>(options, "GET", `/v1/rewards`, { query: pick(params, ["center", "lat", "lng", "coord", "centers"]) }),
    /** Redeem a reward: hold the points, reserve it, get a pickup code */
    createRedemption: (body: RedemptionCreate, params?: { "Idempotency-Key"?: string | null }): Promise<RedemptionOut> =>
      call<RedemptionOut>(options, "POST", `/v1/redemptions`, { headers: pick(params, ["Idempotency-Key"]) as Record<string, string>, body }),
    /** List my redemptions */
    listMyRedemptions: (params?: { "state"?: RedemptionState | null; "cursor"?: string | null; "limit"?: number }): Promise<Page_RedemptionOut_> =>
      call<Page_RedemptionOut_>(options, "GET", `/v1/me/redemptions`, { query: pick(params, ["state", "cursor", "limit"]) }),
    /** Read one of my redemptions */
    getRedemption: (redemptionId: string): Promise<RedemptionOut> =>
      call<RedemptionOut>(options, "GET", `/v1/redemptions/${encodeURIComponent(redemptionId)}`),
    /** Cancel my redemption before pickup */
    cancelRedemption: (redemptionId: string): Promise<RedemptionOut> =>
      call<RedemptionOut>(options, "POST", `/v1/redemptions/${encodeURIComponent(redemptionId)}/cancel`),
    /** My rotating member code for redeeming at the counter */
    getMemberCode: (): Promise<MemberCodeOut> =>
      call<MemberCodeOut>(options, "GET", `/v1/me/member-code`),
    /** Hand out a reserved reward against its pickup code or QR */
    fulfilRedemption: (code: string, body: FulfilIn): Promise<RedemptionOut> =>
      call<RedemptionOut>(options, "POST", `/v1/staff/redemptions/${encodeURIComponent(code)}/fulfil`, { body }),
    /** Redeem in one step at the counter with the member's code */
    createCounterRedemption: (body: CounterRedemptionCreate, params?: { "Idempotency-Key"?: string | null }): Promise<RedemptionOut> =>
      call<RedemptionOut>(options, "POST", `/v1/staff/counter-redemptions`, { headers: pick(params, ["Idempotency-Key"]) as Record<string, string>, body }),
    /** Export a service center's redemptions of a period as CSV */
    exportCenterRedemptions: (centerId: string, params?: { "from"?: string | null; "to"?: string | null }): Promise<void> =>
      call<void>(options, "GET", `/v1/staff/service-centers/${encodeURIComponent(centerId)}/redemptions.csv`, { query: pick(params, ["from", "to"]) }),
    /** List the service centers in my regions */
    listServiceCenters: (params?: { "cursor"?: string | null; "limit"?: number }): Promise<Page_ServiceCenterOut_> =>
      call<Page_ServiceCenterOut_>(options, "GET", `/v1/admin/service-centers`, { query: pick(params, ["cursor", "limit"]) }),
    /** Open a service center */
    createServiceCenter: (body: ServiceCenterCreate): Promise<ServiceCenterOut> =>
      call<ServiceCenterOut>(options, "POST", `/v1/admin/service-centers`, { body }),
    /** Change a service center */
    updateServiceCenter: (centerId: string, body: ServiceCenterUpdate): Promise<ServiceCenterOut> =>
      call<ServiceCenterOut>(options, "PATCH", `/v1/admin/service-centers/${encodeURIComponent(centerId)}`, { body }),
    /** List the rewards in my regions */
    listAdminRewards: (params?: { "cursor"?: string | null; "limit"?: number }): Promise<Page_RewardOut_> =>
      call<Page_RewardOut_>(options, "GET", `/v1/admin/rewards`, { query: pick(params, ["cursor", "limit"]) }),
    /** Add a reward to the catalog */
    createReward: (body: RewardCreate): Promise<RewardOut> =>
      call<RewardOut>(options, "POST", `/v1/admin/rewards`, { body }),
    /** Change a reward */
    updateReward: (rewardId: string, body: RewardUpdate): Promise<RewardOut> =>
      call<RewardOut>(options, "PATCH", `/v1/admin/rewards/${encodeURIComponent(rewardId)}`, { body }),
    /** Restock a reward at a service center */
    restockReward: (rewardId: string, body: RestockIn, params?: { "Idempotency-Key"?: string | null }): Promise<StockOut> =>
      call<StockOut>(options, "POST", `/v1/admin/rewards/${encodeURIComponent(rewardId)}/stock`, { headers: pick(params, ["Idempotency-Key"]) as Record<string, string>, body }),
    /** Sign up as a volunteer of my community */
    signUpVolunteer: (body: VolunteerSignUp): Promise<VolunteerProfile> =>
      call<VolunteerProfile>(options, "POST", `/v1/volunteers`, { body }),
    /** My volunteer registration, teams, hours and points */
    getMyVolunteerProfile: (): Promise<VolunteerProfile> =>
      call<VolunteerProfile>(options, "GET", `/v1/volunteers/me`),
    /** My verified service, newest first */
    listMyServiceRecords: (params?: { "cursor"?: string | null; "limit"?: number }): Promise<Page_ServiceRecord_> =>
      call<Page_ServiceRecord_>(options, "GET", `/v1/volunteers/me/records`, { query: pick(params, ["cursor", "limit"]) }),
    /** Service hours leaderboard of a community for a month */
    getVolunteerLeaderboard: (params?: { "community"?: string | null; "month"?: string | null }): Promise<Leaderboard> =>
      call<Leaderboard>(options, "GET", `/v1/volunteers/leaderboard`, { query: pick(params, ["community", "month"]) }),
    /** Volunteers of my communities, newest first */
    listStaffVolunteers: (params?: { "state"?: VolunteerState | null; "community"?: string | null; "cursor"?: string | null; "limit"?: number }): Promise<Page_StaffVolunteer_> =>
      call<Page_StaffVolunteer_>(options, "GET", `/v1/staff/volunteers`, { query: pick(params, ["state", "community", "cursor", "limit"]) }),
    /** Read a volunteer of my communities */
    getStaffVolunteer: (volunteerId: string): Promise<StaffVolunteerDetail> =>
      call<StaffVolunteerDetail>(options, "GET", `/v1/staff/volunteers/${encodeURIComponent(volunteerId)}`),
    /** Approve a volunteer and issue the volunteer number */
    approveVolunteer: (volunteerId: string): Promise<StaffVolunteerDetail> =>
      call<StaffVolunteerDetail>(options, "POST", `/v1/staff/volunteers/${encodeURIComponent(volunteerId)}/approve`),
    /** Reject a volunteer's registration with a reason */
    rejectVolunteer: (volunteerId: string, body: ReviewReason): Promise<StaffVolunteerDetail> =>
      call<StaffVolunteerDetail>(options, "POST", `/v1/staff/volunteers/${encodeURIComponent(volunteerId)}/reject`, { body }),
    /** Suspend an approved volunteer */
    suspendVolunteer: (volunteerId: string, body: ReviewReason): Promise<StaffVolunteerDetail> =>
      call<StaffVolunteerDetail>(options, "POST", `/v1/staff/volunteers/${encodeURIComponent(volunteerId)}/suspend`, { body }),
    /** Export the service record my communities certify for a volunteer (CSV) */
    exportServiceRecord: (volunteerId: string): Promise<void> =>
      call<void>(options, "GET", `/v1/staff/volunteers/${encodeURIComponent(volunteerId)}/service-record.csv`),
    /** Form a team in a community */
    createTeam: (body: TeamCreate): Promise<TeamDetail> =>
      call<TeamDetail>(options, "POST", `/v1/staff/teams`, { body }),
    /** Teams of my communities, newest first */
    listTeams: (params?: { "community"?: string | null; "cursor"?: string | null; "limit"?: number }): Promise<Page_TeamOut_> =>
      call<Page_TeamOut_>(options, "GET", `/v1/staff/teams`, { query: pick(params, ["community", "cursor", "limit"]) }),
    /** Read a team with its members */
    getTeam: (teamId: string): Promise<TeamDetail> =>
      call<TeamDetail>(options, "GET", `/v1/staff/teams/${encodeURIComponent(teamId)}`),
    /** Add a volunteer to a team */
    addTeamMember: (teamId: string, body: TeamMemberAdd): Promise<TeamDetail> =>
      call<TeamDetail>(options, "POST", `/v1/staff/teams/${encodeURIComponent(teamId)}/members`, { body }),
    /** Take a volunteer off a team */
    removeTeamMember: (teamId: string, volunteerId: string): Promise<TeamDetail> =>
      call<TeamDetail>(options, "DELETE", `/v1/staff/teams/${encodeURIComponent(teamId)}/members/${encodeURIComponent(volunteerId)}`),
    /** Choose a team's leader */
    setTeamLeader: (teamId: string, body: TeamLeaderSet): Promise<TeamDetail> =>
      call<TeamDetail>(options, "PUT", `/v1/staff/teams/${encodeURIComponent(teamId)}/leader`, { body }),
    /** Create an activity (a draft) for a community */
    createActivity: (body: ActivityCreate, params?: { "Idempotency-Key"?: string | null }): Promise<StaffActivityOut> =>
      call<StaffActivityOut>(options, "POST", `/v1/staff/activities`, { headers: pick(params, ["Idempotency-Key"]) as Record<string, string>, body }),
    /** Activities organised in my regions */
    listStaffActivities: (params?: { "state"?: ActivityState | null; "from"?: string | null; "to"?: string | null; "cursor"?: string | null; "limit"?: number }): Promise<Page_StaffActivityItem_> =>
      call<Page_StaffActivityItem_>(options, "GET", `/v1/staff/activities`, { query: pick(params, ["state", "from", "to", "cursor", "limit"]) }),
    /** An activity with its enrolment and attendance counts */
    getStaffActivity: (activityId: string): Promise<StaffActivityOut> =>
      call<StaffActivityOut>(options, "GET", `/v1/staff/activities/${encodeURIComponent(activityId)}`),
    /** Change an activity */
    updateActivity: (activityId: string, body: ActivityUpdate): Promise<StaffActivityOut> =>
      call<StaffActivityOut>(options, "PATCH", `/v1/staff/activities/${encodeURIComponent(activityId)}`, { body }),
    /** Publish a draft: volunteers can find it and enrol */
    publishActivity: (activityId: string): Promise<StaffActivityOut> =>
      call<StaffActivityOut>(options, "POST", `/v1/staff/activities/${encodeURIComponent(activityId)}/publish`),
    /** Cancel an activity; its volunteers see why */
    cancelActivity: (activityId: string, body: CancelIn): Promise<StaffActivityOut> =>
      call<StaffActivityOut>(options, "POST", `/v1/staff/activities/${encodeURIComponent(activityId)}/cancel`, { body }),
    /** Finish an activity now and record the no-shows */
    finishActivity: (activityId: string): Promise<StaffActivityOut> =>
      call<StaffActivityOut>(options, "POST", `/v1/staff/activities/${encodeURIComponent(activityId)}/finish`),
    /** An activity's roster: who holds a place, who waits */
    listActivityEnrolments: (activityId: string, params?: { "state"?: EnrolmentState | null; "cursor"?: string | null; "limit"?: number }): Promise<Page_StaffEnrolmentOut_> =>
      call<Page_StaffEnrolmentOut_>(options, "GET", `/v1/staff/activities/${encodeURIComponent(activityId)}/enrolments`, { query: pick(params, ["state", "cursor", "limit"]) }),
    /** Activities near me, or in a community, with the places left */
    listActivities: (params?: { "lat"?: number | null; "lng"?: number | null; "coord"?: "gcj02" | "wgs84"; "radius_km"?: number; "community"?: string | null; "cursor"?: string | null; "limit"?: number }): Promise<Page_ActivityItem_> =>
      call<Page_ActivityItem_>(options, "GET", `/v1/activities`, { query: pick(params, ["lat", "lng", "coord", "radius_km", "community", "cursor", "limit"]) }),
    /** An activity: where, when, the check-in area and the places left */
    getActivity: (activityId: string): Promise<ActivityOut> =>
      call<ActivityOut>(options, "GET", `/v1/activities/${encodeURIComponent(activityId)}`),
    /** Enrol: take a place, or join the waitlist when it is full */
    enrolInActivity: (activityId: string): Promise<EnrolmentOut> =>
      call<EnrolmentOut>(options, "POST", `/v1/activities/${encodeURIComponent(activityId)}/enrolments`),
    /** Cancel my enrolment; the first in the queue gets the place */
    cancelEnrolment: (enrolmentId: string): Promise<EnrolmentOut> =>
      call<EnrolmentOut>(options, "POST", `/v1/enrolments/${encodeURIComponent(enrolmentId)}/cancel`),
    /** My enrolments, newest first */
    listMyEnrolments: (params?: { "state"?: EnrolmentState | null; "cursor"?: string | null; "limit"?: number }): Promise<Page_EnrolmentOut_> =>
      call<Page_EnrolmentOut_>(options, "GET", `/v1/me/enrolments`, { query: pick(params, ["state", "cursor", "limit"]) }),
    /** The rotating check-in code to show on site */
    getCheckinCode: (activityId: string): Promise<CheckinCodeOut> =>
      call<CheckinCodeOut>(options, "GET", `/v1/staff/activities/${encodeURIComponent(activityId)}/code`),
    /** Check in on site with the scanned code and my location */
    checkIn: (activityId: string, body: ScanIn): Promise<AttendanceOut> =>
      call<AttendanceOut>(options, "POST", `/v1/activities/${encodeURIComponent(activityId)}/check-in`, { body }),
    /** Check out on site; clean attendance is verified and paid at once */
    checkOut: (activityId: string, body: ScanIn): Promise<AttendanceOut> =>
      call<AttendanceOut>(options, "POST", `/v1/activities/${encodeURIComponent(activityId)}/check-out`, { body }),
    /** Add points of my patrol's track while checked in */
    uploadTrack: (activityId: string, body: TrackIn): Promise<TrackOut> =>
      call<TrackOut>(options, "POST", `/v1/activities/${encodeURIComponent(activityId)}/track`, { body }),
    /** My attendance at an activity */
    getMyAttendance: (activityId: string): Promise<AttendanceOut> =>
      call<AttendanceOut>(options, "GET", `/v1/activities/${encodeURIComponent(activityId)}/attendance`),
    /** Attendance waiting for review (or in another state) */
    listAttendance: (params?: { "state"?: AttendanceState; "activity"?: string | null; "cursor"?: string | null; "limit"?: number }): Promise<Page_StaffAttendanceOut_> =>
      call<Page_StaffAttendanceOut_>(options, "GET", `/v1/staff/attendance`, { query: pick(params, ["state", "activity", "cursor", "limit"]) }),
    /** One attendance with its track, for review */
    getAttendance: (attendanceId: string): Promise<StaffAttendanceDetail> =>
      call<StaffAttendanceDetail>(options, "GET", `/v1/staff/attendance/${encodeURIComponent(attendanceId)}`),
    /** Approve an attendance: credit the hours and pay the points */
    approveAttendance: (attendanceId: string, body: ApproveIn): Promise<StaffAttendanceOut> =>
      call<StaffAttendanceOut>(options, "POST", `/v1/staff/attendance/${encodeURIComponent(attendanceId)}/approve`, { body }),
    /** Reject an attendance: no hours, no points */
    rejectAttendance: (attendanceId: string, body: RejectIn): Promise<StaffAttendanceOut> =>
      call<StaffAttendanceOut>(options, "POST", `/v1/staff/attendance/${encodeURIComponent(attendanceId)}/reject`, { body }),
    /** The checklist of an inspection activity */
    getInspectionChecklist: (activityId: string): Promise<ChecklistOut> =>
      call<ChecklistOut>(options, "GET", `/v1/activities/${encodeURIComponent(activityId)}/checklist`),
    /** File a house's inspection; failed items become reports */
    fileInspection: (activityId: string, body: InspectionCreate, params?: { "Idempotency-Key"?: string | null }): Promise<InspectionOut> =>
      call<InspectionOut>(options, "POST", `/v1/activities/${encodeURIComponent(activityId)}/inspections`, { headers: pick(params, ["Idempotency-Key"]) as Record<string, string>, body }),
    /** My inspections at an activity */
    listMyInspections: (activityId: string, params?: { "cursor"?: string | null; "limit"?: number }): Promise<Page_InspectionOut_> =>
      call<Page_InspectionOut_>(options, "GET", `/v1/activities/${encodeURIComponent(activityId)}/inspections`, { query: pick(params, ["cursor", "limit"]) }),
    /** Every inspection filed at an activity */
    listActivityInspections: (activityId: string, params?: { "cursor"?: string | null; "limit"?: number }): Promise<Page_StaffInspectionOut_> =>
      call<Page_StaffInspectionOut_>(options, "GET", `/v1/staff/activities/${encodeURIComponent(activityId)}/inspections`, { query: pick(params, ["cursor", "limit"]) }),
  };
}

function pick(source: Record<string, unknown> | undefined, keys: string[]): Query {
  const picked: Query = {};
  for (const key of keys) {
    const value = source?.[key];
    if (value !== undefined) picked[key] = value as Query[string];
  }
  return picked;
}
