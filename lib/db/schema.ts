import type { ColumnType, Generated } from "kysely";

/** A nullable column that inserts may leave out. */
type OptionalText = ColumnType<string | null, string | null | undefined, string | null>;

// Times are ISO-8601 UTC strings (Date#toISOString): portable across SQLite and PostgreSQL,
// and ordered correctly by plain string comparison. JSON columns hold JSON text.

export type Role = "admin" | "viewer";
export const ROLES: readonly Role[] = ["admin", "viewer"];

export type CertificateSource = "acme" | "upload" | "file" | "self_signed" | "local_ca";
export type CertificateStatus = "pending" | "requesting" | "active" | "renewing" | "failed" | "expired";
export const CERTIFICATE_STATUSES: readonly CertificateStatus[] = [
  "pending",
  "requesting",
  "active",
  "renewing",
  "failed",
  "expired",
];
export type EventSeverity = "info" | "warning" | "error";

export interface UsersTable {
  id: string;
  email: string;
  password_hash: string;
  role: Role;
  created_at: string;
  updated_at: string;
  last_login_at: string | null;
}

export interface ApiTokensTable {
  id: string;
  user_id: string;
  name: string;
  token_hash: string;
  prefix: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface AuditLogTable {
  id: Generated<number>;
  at: string;
  actor_id: string | null;
  actor_label: string;
  action: string;
  target_type: string | null;
  target_id: string | null;
  detail: string | null;
  ip: string | null;
}

export interface SettingsTable {
  key: string;
  value: string;
  updated_at: string;
}

export interface LoginAttemptsTable {
  id: Generated<number>;
  at: string;
  email: string;
  ip: string;
  succeeded: number;
}

export interface CertificatesTable {
  id: string;
  name: string;
  source: CertificateSource;
  status: CertificateStatus;
  domains: string;
  key_type: string;
  validity_days: number | null;
  chain_pem: string | null;
  sealed_key: string | null;
  subject: string | null;
  issuer: string | null;
  serial: string | null;
  fingerprint_sha256: string | null;
  not_before: string | null;
  not_after: string | null;
  renew_at: string | null;
  renew_reason: string | null;
  next_attempt_at: string | null;
  attempts: number;
  last_error: string | null;
  lease_owner: string | null;
  lease_expires_at: string | null;
  created_by: string | null;
  created_at: string;
  updated_at: string;
  source_cert_path: OptionalText;
  source_key_path: OptionalText;
  source_hash: OptionalText;
  // ACME (0003): the account and challenge used, the order in flight, renewal information.
  acme_account_id: OptionalText;
  challenge: ColumnType<AcmeChallengeType | null, AcmeChallengeType | null | undefined, AcmeChallengeType | null>;
  dns_credential_id: OptionalText;
  /** The order step in flight (for resuming after a crash and for the page). */
  acme_step: OptionalText;
  order_url: OptionalText;
  /** The key the in-flight order's CSR was made from, sealed with context `certificate-pending-key:<id>`. */
  pending_sealed_key: OptionalText;
  /** The raw error (CA problem document or transport error) beside last_error's plain words. */
  last_error_detail: OptionalText;
  ari_checked_at: OptionalText;
  /** JSON {start, end, explanationUrl?} from the CA's renewal information. */
  ari_window: OptionalText;
  /** 1: the next order skips the rate-limit ledger's refusal (operator forced it). */
  force_next_order: ColumnType<number | null, number | null | undefined, number | null>;
}

export interface CertificateVersionsTable {
  id: string;
  certificate_id: string;
  version: number;
  chain_pem: string;
  sealed_key: string;
  fingerprint_sha256: string;
  serial: string;
  issuer: string;
  not_before: string;
  not_after: string;
  reason: string;
  created_at: string;
}

export interface EventsTable {
  id: Generated<number>;
  at: string;
  type: string;
  severity: EventSeverity;
  certificate_id: string | null;
  listener_id: string | null;
  message: string;
  detail: string | null;
}

export type ListenerKind = "https" | "http";
export type FallbackPolicy = "self_signed" | "refuse";
export type HttpAction = "redirect" | "proxy";

export interface ListenersTable {
  id: string;
  name: string;
  kind: ListenerKind;
  bind_address: string;
  port: number;
  upstream_url: string | null;
  /** 1: an https:// upstream's certificate must be valid for its host name; 0: any certificate is accepted. */
  upstream_tls_verify: number;
  min_tls_version: "TLSv1.2" | "TLSv1.3";
  default_certificate_id: string | null;
  fallback_policy: FallbackPolicy;
  http_action: HttpAction | null;
  redirect_port: number | null;
  enabled: number;
  fallback_chain_pem: string | null;
  fallback_sealed_key: string | null;
  created_at: string;
  updated_at: string;
}

export interface CertificateMappingsTable {
  id: string;
  listener_id: string;
  hostname: string;
  certificate_id: string;
  created_at: string;
}

export type AcmeChallengeType = "http-01" | "tls-alpn-01" | "dns-01";
export const ACME_CHALLENGE_TYPES: readonly AcmeChallengeType[] = ["http-01", "tls-alpn-01", "dns-01"];

export interface AcmeAccountsTable {
  id: string;
  directory_url: string;
  /** "" when the account has no contact address. */
  email: string;
  /** The account's private key (PEM), sealed with context `acme-account-key:<id>`. */
  sealed_key: string;
  /** Set once the CA has registered the account. */
  account_url: string | null;
  eab_kid: string | null;
  /** The EAB HMAC key, sealed with context `acme-eab:<id>`. */
  sealed_eab_hmac: string | null;
  tos_agreed_at: string | null;
  is_default: number;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

export type RateLedgerKind = "new_order" | "failed_validation";

export interface AcmeRateLedgerTable {
  id: Generated<number>;
  directory_url: string;
  kind: RateLedgerKind;
  registered_domain: string | null;
  /** The order's names, lower-cased, sorted and joined with ",". */
  names_key: string | null;
  /** For failed validations: the name that failed. */
  identifier: string | null;
  certificate_id: string | null;
  /** 1: a renewal inside the CA's ARI window, which Let's Encrypt does not count. */
  exempt: number;
  at: string;
}

export interface AcmeChallengesTable {
  id: string;
  kind: "http-01" | "tls-alpn-01";
  certificate_id: OptionalText;
  identifier: string;
  token: string | null;
  key_authorization: string | null;
  certificate_pem: string | null;
  sealed_key: string | null;
  expires_at: string;
  created_at: string;
}

export type DnsProviderKind = "cloudflare";
export const DNS_PROVIDERS: readonly DnsProviderKind[] = ["cloudflare"];

export interface DnsCredentialsTable {
  id: string;
  name: string;
  provider: DnsProviderKind;
  /** The API token, sealed with context `dns-credential-token:<id>`. Never returned, never logged. */
  sealed_token: string;
  /** The token's last 4 characters, for the operator to tell tokens apart. */
  token_hint: string;
  verified_at: string | null;
  /** JSON: the last verification's outcome (status, zones, what is missing). */
  verification: string | null;
  created_by: string | null;
  created_at: string;
  updated_at: string;
}

export type DnsRecordState = "active" | "released";

/** A TXT record Portcullis created (or adopted) at a DNS provider; removed when nothing needs it. */
export interface DnsRecordsTable {
  id: string;
  credential_id: string;
  /** The certificate whose order needs the record, or null for a zone test. */
  certificate_id: string | null;
  test_id: string | null;
  zone_id: string;
  zone_name: string;
  fqdn: string;
  value: string;
  /** Null until the provider answered the create call (a crash in between leaves it null). */
  provider_record_id: string | null;
  /** active: an order or test needs it; released: to be deleted at the provider (a failed delete is retried). */
  state: DnsRecordState;
  last_error: string | null;
  /** After this, a sweep removes it whatever its state (a worker died holding it). */
  expires_at: string;
  created_at: string;
}

export type DnsTestStatus = "queued" | "running" | "passed" | "failed";

export interface DnsTestsTable {
  id: string;
  credential_id: string;
  zone: string;
  status: DnsTestStatus;
  message: string | null;
  lease_owner: string | null;
  lease_expires_at: string | null;
  created_by: string | null;
  created_at: string;
  finished_at: string | null;
}

export interface ListenerChecksTable {
  listener_id: string;
  hostname: string;
  checked_at: string;
  status: "serving" | "mismatch" | "error";
  expected_fingerprint: string | null;
  served_fingerprint: string | null;
  served_subject: string | null;
  detail: string | null;
}

export type WebhookDeliveryStatus = "pending" | "delivered" | "failed";

export interface WebhooksTable {
  id: string;
  name: string;
  url: string;
  /** The HMAC signing secret, sealed with context `webhook-secret:<id>`. */
  sealed_secret: string;
  /** JSON array of event types. */
  event_types: string;
  enabled: number;
  created_by: string | null;
  created_at: string;
  updated_at: string;
}

export interface WebhookDeliveriesTable {
  id: string;
  webhook_id: string;
  event_id: number | null;
  problem_key: string;
  type: string;
  payload: string;
  status: WebhookDeliveryStatus;
  attempts: number;
  next_attempt_at: string | null;
  last_status_code: number | null;
  last_error: string | null;
  last_duration_ms: number | null;
  lease_owner: string | null;
  lease_expires_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface AlertProblemsTable {
  problem_key: string;
  type: string;
  certificate_id: string | null;
  listener_id: string | null;
  opened_at: string;
  last_seen_at: string;
  last_event_id: number | null;
  occurrences: number;
  resolved_at: string | null;
}

export interface EventCursorsTable {
  name: string;
  last_event_id: number;
  updated_at: string;
}

export interface ExpiryNoticesTable {
  certificate_id: string;
  fingerprint_sha256: string;
  /** 30, 14, 7 or 1 days before expiry; 0 once expired. */
  threshold_days: number;
  at: string;
}

export interface ListenerCountersTable {
  worker_id: string;
  listener_id: string;
  handshakes: number;
  handshake_errors: number;
  fallback_served: number;
  requests: number;
  upstream_errors: number;
  updated_at: string;
}

export interface Database {
  users: UsersTable;
  api_tokens: ApiTokensTable;
  audit_log: AuditLogTable;
  settings: SettingsTable;
  login_attempts: LoginAttemptsTable;
  certificates: CertificatesTable;
  certificate_versions: CertificateVersionsTable;
  events: EventsTable;
  listeners: ListenersTable;
  certificate_mappings: CertificateMappingsTable;
  acme_challenges: AcmeChallengesTable;
  acme_accounts: AcmeAccountsTable;
  acme_rate_ledger: AcmeRateLedgerTable;
  listener_checks: ListenerChecksTable;
  dns_credentials: DnsCredentialsTable;
  dns_records: DnsRecordsTable;
  dns_tests: DnsTestsTable;
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  alert_problems: AlertProblemsTable;
  event_cursors: EventCursorsTable;
  expiry_notices: ExpiryNoticesTable;
  listener_counters: ListenerCountersTable;
}
