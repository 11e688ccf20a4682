# adloop on Google Cloud: three Cloud Run services, Cloud SQL for PostgreSQL and Memorystore for Redis on a
# private network, secrets in Secret Manager, one service account per service with only the rights it needs.

locals {
  services = {
    "gateway-api" = { port = 8080, schema = "gateway", grpc = false, public = true }
    "ml-service"  = { port = 50051, schema = "ml", grpc = true, public = false }
    "capi-relay"  = { port = 8090, schema = "capi", grpc = false, public = true }
  }
  # ml-service's callers: the only accounts that may invoke it.
  ml_service_callers = ["gateway-api", "capi-relay"]
  # What each service may read from Secret Manager, by secret key (below).
  service_secrets = {
    "gateway-api" = ["gateway-api-database-url", "meta-access-token"]
    "ml-service"  = ["ml-service-database-url", "redis-url"]
    "capi-relay"  = ["capi-relay-database-url", "meta-access-token", "meta-app-secret", "pixel-credentials"]
  }
  secret_values = {
    "gateway-api-database-url" = local.database_urls["gateway-api"]
    "ml-service-database-url"  = local.database_urls["ml-service"]
    "capi-relay-database-url"  = local.database_urls["capi-relay"]
    "redis-url"                = "redis://:${google_redis_instance.cache.auth_string}@${google_redis_instance.cache.host}:${google_redis_instance.cache.port}"
    "meta-access-token"        = var.meta_access_token
    "meta-app-secret"          = var.meta_app_secret
    "pixel-credentials"        = var.pixel_credentials_toml
  }
  service_secret_pairs = merge([
    for service, secrets in local.service_secrets : {
      for secret in secrets : "${service}/${secret}" => { service = service, secret = secret }
    }
  ]...)
}

resource "google_project_service" "required" {
  for_each = toset([
    "run.googleapis.com",
    "sqladmin.googleapis.com",
    "redis.googleapis.com",
    "secretmanager.googleapis.com",
    "vpcaccess.googleapis.com",
    "servicenetworking.googleapis.com",
    "compute.googleapis.com",
  ])
  service            = each.value
  disable_on_destroy = false
}

resource "google_service_account" "service" {
  for_each     = local.services
  account_id   = "adloop-${each.key}"
  display_name = "adloop ${each.key}"
}

# Logs, metrics and traces: the only project-wide roles the services hold.
resource "google_project_iam_member" "telemetry" {
  for_each = merge([
    for service in keys(local.services) : {
      for role in ["roles/logging.logWriter", "roles/monitoring.metricWriter", "roles/cloudtrace.agent"] :
      "${service}/${role}" => { service = service, role = role }
    }
  ]...)
  project = var.project_id
  role    = each.value.role
  member  = "serviceAccount:${google_service_account.service[each.value.service].email}"
}
