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

export interface Me {
  "id": string;
  "nickname": string | null;
  /** Masked, e.g. `138****5678`; null until bound. */
  "phone": string | null;
  "roles": Array<RoleOut>;
  "created_at": string;
}

export interface Page_RoleGrantOut_ {
  "items": Array<RoleGrantOut>;
  /** Pass as `cursor` for the next page; null on the last page. */
  "next_cursor"?: string | null;
}

export interface PhoneBinding {
  /** The code from the getPhoneNumber button (`e.detail.code`). */
  "code": string;
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

export interface RefreshRequest {
  "refresh_token": string;
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
  "name"?: string | null;
  "name_en"?: string | null;
  /** GeoJSON Polygon or MultiPolygon, in the system named by `coord`. */
  "boundary"?: Record<string, unknown> | null;
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

export interface WechatLogin {
  /** The code from `wx.login()` (single use). */
  "code": string;
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
