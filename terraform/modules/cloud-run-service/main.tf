# One adloop service on Cloud Run: its settings as environment variables, each secret mounted from Secret
# Manager as a file its setting names, private egress through the VPC connector, probes on its own health
# endpoints. Used by ../../run.tf for the three services.

terraform {
  required_providers {
    google = {
      source = "hashicorp/google"
    }
  }
}

resource "google_cloud_run_v2_service" "service" {
  name                = var.name
  location            = var.region
  ingress             = var.ingress
  deletion_protection = var.deletion_protection

  template {
    service_account                  = var.service_account
    max_instance_request_concurrency = var.concurrency
    scaling {
      min_instance_count = 1
      max_instance_count = var.max_instances
    }
    vpc_access {
      connector = var.vpc_connector
      egress    = "PRIVATE_RANGES_ONLY"
    }
    containers {
      image = var.image
      ports {
        name           = var.grpc ? "h2c" : "http1"
        container_port = var.port
      }
      dynamic "env" {
        for_each = var.settings
        content {
          name  = env.key
          value = env.value
        }
      }
      dynamic "env" {
        for_each = var.secret_files
        content {
          name  = env.key
          value = "/secrets/${env.value}/value"
        }
      }
      resources {
        limits = {
          cpu    = "2"
          memory = var.memory
        }
        cpu_idle          = !var.cpu_always_allocated
        startup_cpu_boost = true
      }
      startup_probe {
        period_seconds    = 2
        failure_threshold = var.grpc ? 60 : 30
        dynamic "grpc" {
          for_each = var.grpc ? [1] : []
          content {
            port = var.port
          }
        }
        dynamic "http_get" {
          for_each = var.grpc ? [] : [1]
          content {
            path = "/healthz"
            port = var.port
          }
        }
      }
      liveness_probe {
        period_seconds = 10
        dynamic "grpc" {
          for_each = var.grpc ? [1] : []
          content {
            port = var.port
          }
        }
        dynamic "http_get" {
          for_each = var.grpc ? [] : [1]
          content {
            path = "/healthz"
            port = var.port
          }
        }
      }
      dynamic "volume_mounts" {
        for_each = toset(values(var.secret_files))
        content {
          name       = volume_mounts.value
          mount_path = "/secrets/${volume_mounts.value}"
        }
      }
    }
    dynamic "volumes" {
      for_each = toset(values(var.secret_files))
      content {
        name = volumes.value
        secret {
          secret = volumes.value
          items {
            version = "latest"
            path    = "value"
          }
        }
      }
    }
  }
}
