# The three services on Cloud Run. ml-service takes internal traffic only and only its two callers' service
# accounts may invoke it; gateway-api and capi-relay face clients over HTTPS and authenticate every request
# themselves (API keys, ingest tokens), so anyone may reach them.

locals {
  # Settings per service (names as in each service's defaults.toml; checked in `make test`).
  service_settings = {
    "gateway-api" = {
      ADLOOP_EXECUTOR__ENABLED    = "true"
      ADLOOP_GRAPH__BASE_URL      = "https://graph.facebook.com"
      ADLOOP_ML_SERVICE__ENDPOINT = google_cloud_run_v2_service.ml_service.uri
      # ml-service's IAM admits this service account: every call carries its ID token.
      ADLOOP_ML_SERVICE__GOOGLE_ID_TOKEN = "true"
    }
    "capi-relay" = {
      ADLOOP_DELIVERY__ENABLED                    = "true"
      ADLOOP_DELIVERY__BASE_URL                   = "https://graph.facebook.com"
      ADLOOP_LEARNING__ENABLED                    = "true"
      ADLOOP_LEARNING__ML_SERVICE_ENDPOINT        = google_cloud_run_v2_service.ml_service.uri
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

resource "google_cloud_run_v2_service" "ml_service" {
  name                = "adloop-ml-service"
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  deletion_protection = var.deletion_protection

  template {
    service_account                  = google_service_account.service["ml-service"].email
    max_instance_request_concurrency = 80
    scaling {
      min_instance_count = 1
      max_instance_count = var.max_instances["ml-service"]
    }
    vpc_access {
      connector = google_vpc_access_connector.adloop.id
      egress    = "PRIVATE_RANGES_ONLY"
    }
    containers {
      image = "${var.image_repository}/ml-service:${var.image_tag}"
      ports {
        # gRPC: HTTP/2 end to end.
        name           = "h2c"
        container_port = local.services["ml-service"].port
      }
      env {
        name  = "ADLOOP_SERVER__PORT"
        value = tostring(local.services["ml-service"].port)
      }
      env {
        name  = "ADLOOP_DATABASE__SCHEMA"
        value = local.services["ml-service"].schema
      }
      dynamic "env" {
        for_each = local.service_secret_files["ml-service"]
        content {
          name  = env.key
          value = "/secrets/${env.value}/value"
        }
      }
      resources {
        limits = {
          cpu    = "2"
          memory = "1Gi"
        }
        startup_cpu_boost = true
      }
      startup_probe {
        period_seconds    = 2
        failure_threshold = 60
        grpc {
          port = local.services["ml-service"].port
        }
      }
      liveness_probe {
        period_seconds = 10
        grpc {
          port = local.services["ml-service"].port
        }
      }
      dynamic "volume_mounts" {
        for_each = local.service_secret_files["ml-service"]
        content {
          name       = volume_mounts.value
          mount_path = "/secrets/${volume_mounts.value}"
        }
      }
    }
    dynamic "volumes" {
      for_each = local.service_secret_files["ml-service"]
      content {
        name = volumes.value
        secret {
          secret = google_secret_manager_secret.adloop[volumes.value].secret_id
          items {
            version = "latest"
            path    = "value"
          }
        }
      }
    }
  }
  depends_on = [google_secret_manager_secret_iam_member.reader, google_secret_manager_secret_version.adloop]
}

resource "google_cloud_run_v2_service" "client_facing" {
  for_each            = { for name, service in local.services : name => service if service.public }
  name                = "adloop-${each.key}"
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection

  template {
    service_account                  = google_service_account.service[each.key].email
    max_instance_request_concurrency = 200
    scaling {
      # Background workers (the executor, delivery) run between requests: keep one instance up.
      min_instance_count = 1
      max_instance_count = var.max_instances[each.key]
    }
    vpc_access {
      connector = google_vpc_access_connector.adloop.id
      egress    = "PRIVATE_RANGES_ONLY"
    }
    containers {
      image = "${var.image_repository}/${each.key}:${var.image_tag}"
      ports {
        name           = "http1"
        container_port = each.value.port
      }
      env {
        name  = "ADLOOP_SERVER__PORT"
        value = tostring(each.value.port)
      }
      env {
        name  = "ADLOOP_DATABASE__SCHEMA"
        value = each.value.schema
      }
      dynamic "env" {
        for_each = local.service_settings[each.key]
        content {
          name  = env.key
          value = env.value
        }
      }
      dynamic "env" {
        for_each = local.service_secret_files[each.key]
        content {
          name  = env.key
          value = "/secrets/${env.value}/value"
        }
      }
      resources {
        limits = {
          cpu    = "2"
          memory = "512Mi"
        }
        # The executor's and the relay's workers need CPU outside requests.
        cpu_idle          = false
        startup_cpu_boost = true
      }
      startup_probe {
        period_seconds    = 2
        failure_threshold = 30
        http_get {
          path = "/healthz"
          port = each.value.port
        }
      }
      liveness_probe {
        period_seconds = 10
        http_get {
          path = "/healthz"
          port = each.value.port
        }
      }
      dynamic "volume_mounts" {
        for_each = local.service_secret_files[each.key]
        content {
          name       = volume_mounts.value
          mount_path = "/secrets/${volume_mounts.value}"
        }
      }
    }
    dynamic "volumes" {
      for_each = local.service_secret_files[each.key]
      content {
        name = volumes.value
        secret {
          secret = google_secret_manager_secret.adloop[volumes.value].secret_id
          items {
            version = "latest"
            path    = "value"
          }
        }
      }
    }
  }
  depends_on = [google_secret_manager_secret_iam_member.reader, google_secret_manager_secret_version.adloop]
}

# Only gateway-api and capi-relay may call ml-service.
resource "google_cloud_run_v2_service_iam_member" "ml_service_invoker" {
  for_each = toset(local.ml_service_callers)
  name     = google_cloud_run_v2_service.ml_service.name
  location = var.region
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.service[each.value].email}"
}

# Clients reach gateway-api and capi-relay without Google credentials: both check their own API keys and
# ingest tokens on every request.
resource "google_cloud_run_v2_service_iam_member" "public_invoker" {
  for_each = google_cloud_run_v2_service.client_facing
  name     = each.value.name
  location = var.region
  role     = "roles/run.invoker"
  member   = "allUsers"
}
