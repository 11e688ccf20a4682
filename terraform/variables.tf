variable "project_id" {
  description = "The Google Cloud project adloop runs in."
  type        = string
}

variable "region" {
  description = "Region of every regional resource (Cloud Run, Cloud SQL, Memorystore, the VPC connector)."
  type        = string
  default     = "europe-west1"
}

variable "image_repository" {
  description = "Where the three images live, e.g. europe-west1-docker.pkg.dev/PROJECT/adloop (built from deploy/docker/Dockerfile)."
  type        = string
}

variable "image_tag" {
  description = "The release tag of all three images."
  type        = string
  default     = "0.1.0"
}

variable "meta_access_token" {
  description = "The Meta system-user access token the executor and the relay send to the Graph and Conversions APIs. Stored only in Secret Manager (and Terraform state: keep state in an encrypted, access-controlled backend)."
  type        = string
  sensitive   = true
}

variable "meta_app_secret" {
  description = "The Meta app secret (capi-relay adds appsecret_proof to every request with it)."
  type        = string
  sensitive   = true
}

variable "pixel_credentials_toml" {
  description = "Per-pixel tokens and app secrets as capi-relay settings, e.g. [delivery.pixels.\"123\"] access_token = \"...\". A comment alone when every pixel uses meta_access_token."
  type        = string
  sensitive   = true
  default     = "# every pixel uses the default access token\n"
}

variable "database_tier" {
  description = "Cloud SQL machine tier. The executor benchmark needs about one core of Postgres per 5,000 changes/s (BENCHMARKS.md)."
  type        = string
  default     = "db-custom-2-7680"
}

variable "database_availability" {
  description = "REGIONAL (a standby in a second zone) or ZONAL."
  type        = string
  default     = "REGIONAL"
  validation {
    condition     = contains(["REGIONAL", "ZONAL"], var.database_availability)
    error_message = "database_availability must be REGIONAL or ZONAL."
  }
}

variable "redis_memory_gb" {
  description = "Memorystore size. The shared score cache keeps an ad's draws (about 8.3 KiB) for score_cache.idle_seconds."
  type        = number
  default     = 1
}

variable "network_cidr" {
  description = "The adloop subnet (the VPC connector gets its own /28 below)."
  type        = string
  default     = "10.40.0.0/24"
}

variable "connector_cidr" {
  description = "The serverless VPC connector's /28."
  type        = string
  default     = "10.40.1.0/28"
}

variable "max_instances" {
  description = "The most instances of each service. Every instance holds up to database.max_connections (10) Postgres connections: keep the sum under the Cloud SQL tier's limit."
  type        = map(number)
  default = {
    "gateway-api" = 6
    "ml-service"  = 10
    "capi-relay"  = 8
  }
}

variable "deletion_protection" {
  description = "Refuse to destroy the database and the services (turn off only to tear a test project down)."
  type        = bool
  default     = true
}
