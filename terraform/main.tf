# adloop on Cloud Run: one service per container, secrets from Secret Manager mounted as files and read
# through ADLOOP_<SECTION>__<KEY>_FILE. Cloud SQL and Memorystore are provisioned elsewhere; their URLs come in
# as sensitive variables and live only in Secret Manager.

terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

locals {
  services = {
    "ml-service"  = { port = 50051, schema = "ml", http2 = true }
    "gateway-api" = { port = 8080, schema = "gateway", http2 = false }
    "capi-relay"  = { port = 8090, schema = "capi", http2 = false }
  }
}

resource "google_service_account" "service" {
  for_each     = local.services
  account_id   = "adloop-${each.key}"
  display_name = "adloop ${each.key}"
}

resource "google_secret_manager_secret" "database_url" {
  for_each  = local.services
  secret_id = "adloop-${each.key}-database-url"
  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "database_url" {
  for_each    = local.services
  secret      = google_secret_manager_secret.database_url[each.key].id
  secret_data = var.database_urls[each.key]
}

resource "google_secret_manager_secret" "redis_url" {
  secret_id = "adloop-redis-url"
  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "redis_url" {
  secret      = google_secret_manager_secret.redis_url.id
  secret_data = var.redis_url
}

resource "google_secret_manager_secret_iam_member" "database_url_reader" {
  for_each  = local.services
  secret_id = google_secret_manager_secret.database_url[each.key].id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.service[each.key].email}"
}

resource "google_secret_manager_secret_iam_member" "redis_url_reader" {
  secret_id = google_secret_manager_secret.redis_url.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.service["ml-service"].email}"
}

resource "google_cloud_run_v2_service" "service" {
  for_each = local.services
  name     = "adloop-${each.key}"
  location = var.region
  ingress  = each.key == "ml-service" ? "INGRESS_TRAFFIC_INTERNAL_ONLY" : "INGRESS_TRAFFIC_ALL"

  template {
    service_account = google_service_account.service[each.key].email
    containers {
      image = "${var.image_repository}/${each.key}:${var.image_tag}"
      ports {
        # h2c end to end for gRPC; plain HTTP/1 for the others.
        name           = each.value.http2 ? "h2c" : "http1"
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
      env {
        name  = "ADLOOP_DATABASE__URL_FILE"
        value = "/secrets/database/url"
      }
      dynamic "env" {
        for_each = each.key == "ml-service" ? [1] : []
        content {
          name  = "ADLOOP_REDIS__URL_FILE"
          value = "/secrets/redis/url"
        }
      }
      dynamic "env" {
        for_each = each.key == "gateway-api" ? [1] : []
        content {
          name  = "ADLOOP_ML_SERVICE__ENDPOINT"
          value = var.ml_service_endpoint
        }
      }
      # Each dependency check gives up after 0.8 s (adloop_service_kit::health), so 2 s is ample.
      startup_probe {
        timeout_seconds = 2
        http_get {
          path = "/readyz"
        }
      }
      liveness_probe {
        timeout_seconds = 2
        http_get {
          path = "/healthz"
        }
      }
      volume_mounts {
        name       = "database-url"
        mount_path = "/secrets/database"
      }
      dynamic "volume_mounts" {
        for_each = each.key == "ml-service" ? [1] : []
        content {
          name       = "redis-url"
          mount_path = "/secrets/redis"
        }
      }
    }
    volumes {
      name = "database-url"
      secret {
        secret = google_secret_manager_secret.database_url[each.key].secret_id
        items {
          version = "latest"
          path    = "url"
        }
      }
    }
    dynamic "volumes" {
      for_each = each.key == "ml-service" ? [1] : []
      content {
        name = "redis-url"
        secret {
          secret = google_secret_manager_secret.redis_url.secret_id
          items {
            version = "latest"
            path    = "url"
          }
        }
      }
    }
  }

  depends_on = [
    google_secret_manager_secret_version.database_url,
    google_secret_manager_secret_iam_member.database_url_reader,
  ]
}
