# The three services on Cloud Run. ml-service takes internal traffic only and only its two callers' service
# accounts may invoke it; gateway-api and capi-relay face clients over HTTPS and authenticate every request
# themselves (API keys, ingest tokens), so anyone may reach them.

locals {
  # Settings per service (names as in each service's defaults.toml; checked in `make test`).
  service_settings = {
    "gateway-api" = {
      ADLOOP_EXECUTOR__ENABLED    = "true"
      # Cycles run only for accounts whose autopilot was turned on.
      ADLOOP_AUTOPILOT__ENABLED   = "true"
      ADLOOP_GRAPH__BASE_URL      = "https://graph.facebook.com"
      ADLOOP_ML_SERVICE__ENDPOINT = module.ml_service.uri
      # ml-service's IAM admits this service account: every call carries its ID token.
      ADLOOP_ML_SERVICE__GOOGLE_ID_TOKEN = "true"
    }
    "capi-relay" = {
      ADLOOP_DELIVERY__ENABLED                    = "true"
      ADLOOP_DELIVERY__BASE_URL                   = "https://graph.facebook.com"
      ADLOOP_LEARNING__ENABLED                    = "true"
      ADLOOP_LEARNING__ML_SERVICE_ENDPOINT        = module.ml_service.uri
      ADLOOP_LEARNING__ML_SERVICE_GOOGLE_ID_TOKEN = "true"
    }
  }
  # Secret files per service: setting => secret key.
  service_secret_files = {
    "gateway-api" = {
      ADLOOP_DATABASE__URL_FILE       = "gateway-api-database-url"
      ADLOOP_GRAPH__ACCESS_TOKEN_FILE = "meta-access-token"
    }
    "ml-service" = {
      ADLOOP_DATABASE__URL_FILE = "ml-service-database-url"
      ADLOOP_REDIS__URL_FILE    = "redis-url"
    }
    "capi-relay" = {
      ADLOOP_DATABASE__URL_FILE          = "capi-relay-database-url"
      ADLOOP_DELIVERY__ACCESS_TOKEN_FILE = "meta-access-token"
      ADLOOP_DELIVERY__APP_SECRET_FILE   = "meta-app-secret"
      ADLOOP_CONFIG_FILE                 = "pixel-credentials"
    }
  }
}

locals {
  # Every service's settings: its port and schema, then its own (above).
  all_settings = {
    for name, service in local.services : name => merge(
      {
        ADLOOP_SERVER__PORT     = tostring(service.port)
        ADLOOP_DATABASE__SCHEMA = service.schema
      },
      lookup(local.service_settings, name, {})
    )
  }
}

module "ml_service" {
  source               = "./modules/cloud-run-service"
  name                 = "adloop-ml-service"
  region               = var.region
  image                = "${var.image_repository}/ml-service:${var.image_tag}"
  service_account      = google_service_account.service["ml-service"].email
  port                 = local.services["ml-service"].port
  grpc                 = true
  ingress              = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  max_instances        = var.max_instances["ml-service"]
  concurrency          = 80
  memory               = "1Gi"
  cpu_always_allocated = false
  settings             = local.all_settings["ml-service"]
  secret_files = {
    for setting, secret in local.service_secret_files["ml-service"] :
    setting => google_secret_manager_secret.adloop[secret].secret_id
  }
  vpc_connector       = google_vpc_access_connector.adloop.id
  deletion_protection = var.deletion_protection
  depends_on          = [google_secret_manager_secret_iam_member.reader, google_secret_manager_secret_version.adloop]
}

module "client_facing" {
  source          = "./modules/cloud-run-service"
  for_each        = { for name, service in local.services : name => service if service.public }
  name            = "adloop-${each.key}"
  region          = var.region
  image           = "${var.image_repository}/${each.key}:${var.image_tag}"
  service_account = google_service_account.service[each.key].email
  port            = each.value.port
  grpc            = false
  ingress         = "INGRESS_TRAFFIC_ALL"
  max_instances   = var.max_instances[each.key]
  concurrency     = 200
  memory          = "512Mi"
  # Background workers (the executor, delivery) run between requests.
  cpu_always_allocated = true
  settings             = local.all_settings[each.key]
  secret_files = {
    for setting, secret in local.service_secret_files[each.key] :
    setting => google_secret_manager_secret.adloop[secret].secret_id
  }
  vpc_connector       = google_vpc_access_connector.adloop.id
  deletion_protection = var.deletion_protection
  depends_on          = [google_secret_manager_secret_iam_member.reader, google_secret_manager_secret_version.adloop]
}

# Only gateway-api and capi-relay may call ml-service.
resource "google_cloud_run_v2_service_iam_member" "ml_service_invoker" {
  for_each = toset(local.ml_service_callers)
  name     = module.ml_service.name
  location = var.region
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.service[each.value].email}"
}

# Clients reach gateway-api and capi-relay without Google credentials: both check their own API keys and
# ingest tokens on every request.
resource "google_cloud_run_v2_service_iam_member" "public_invoker" {
  for_each = module.client_facing
  name     = each.value.name
  location = var.region
  role     = "roles/run.invoker"
  member   = "allUsers"
}
