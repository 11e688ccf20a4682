# Cloud SQL for PostgreSQL: one database, one schema and one login per service (each service creates and
# migrates its own schema). Private IP only; every connection encrypted (the URLs ask for sslmode=require).

resource "google_sql_database_instance" "adloop" {
  #checkov:skip=CKV_GCP_6:ssl_mode ENCRYPTED_ONLY below refuses every unencrypted connection; checkov counts only client-certificate mode
  #checkov:skip=CKV_GCP_79:adloop's tests run on PostgreSQL 15 (Debian 12); move up with the test suite
  #checkov:skip=CKV2_GCP_13:log_duration logs every statement, thousands a second under the executor's load; slow ones are found with Query Insights
  name                = "adloop"
  region              = var.region
  database_version    = "POSTGRES_15"
  deletion_protection = var.deletion_protection
  depends_on          = [google_service_networking_connection.managed_services]

  settings {
    tier              = var.database_tier
    availability_type = var.database_availability
    disk_autoresize   = true

    ip_configuration {
      ipv4_enabled    = false
      private_network = google_compute_network.adloop.id
      ssl_mode        = "ENCRYPTED_ONLY"
    }

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
      transaction_log_retention_days = 7
      backup_retention_settings {
        retained_backups = 14
      }
    }

    insights_config {
      query_insights_enabled = true
    }

    # Logging that operators and auditors expect; statements themselves are not logged (they carry
    # hashed user data and tokens' owners).
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_min_messages"
      value = "error"
    }
    database_flags {
      name  = "log_temp_files"
      value = "0"
    }
    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }
    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }
    database_flags {
      name  = "log_statement"
      value = "ddl"
    }
    database_flags {
      name  = "log_hostname"
      value = "on"
    }
    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }
    # Each replica holds up to database.max_connections (10): room for the default max_instances.
    database_flags {
      name  = "max_connections"
      value = "400"
    }
  }
}

resource "google_sql_database" "adloop" {
  name     = "adloop"
  instance = google_sql_database_instance.adloop.name
}

resource "random_password" "database" {
  for_each = local.services
  length   = 32
  special  = false
}

resource "google_sql_user" "service" {
  for_each = local.services
  name     = "adloop-${each.key}"
  instance = google_sql_database_instance.adloop.name
  password = random_password.database[each.key].result
}

locals {
  database_urls = {
    for service, _ in local.services :
    service => "postgres://${google_sql_user.service[service].name}:${random_password.database[service].result}@${google_sql_database_instance.adloop.private_ip_address}:5432/${google_sql_database.adloop.name}?sslmode=require"
  }
}
