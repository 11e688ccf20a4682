variable "project_id" {
  description = "Google Cloud project that hosts adloop"
  type        = string
}

variable "region" {
  description = "Region for Cloud Run services"
  type        = string
  default     = "europe-west1"
}

variable "image_repository" {
  description = "Container registry path holding the adloop/<service> images"
  type        = string
}

variable "image_tag" {
  description = "Image tag to deploy"
  type        = string
  default     = "0.1.0"
}

variable "database_urls" {
  description = "postgres:// URL per service (Cloud SQL); stored only in Secret Manager"
  type        = map(string)
  sensitive   = true
}

variable "redis_url" {
  description = "redis:// URL of the Memorystore instance ml-service caches scores in"
  type        = string
  sensitive   = true
}

variable "ml_service_endpoint" {
  description = "gRPC endpoint gateway-api uses for ml-service (ml-service's internal address)"
  type        = string
}
