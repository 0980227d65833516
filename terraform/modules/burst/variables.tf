variable "name" {
  description = "Prefix for every resource this module creates."
  type        = string
  default     = "burst"
}

variable "vpc_id" {
  description = "VPC the master and the workers run in."
  type        = string
}

variable "master_id" {
  description = "The burst master's id (master_id in <state_dir>/run.json). IAM only lets the master launch, tag and terminate instances tagged with it. Required: no wildcard, so one master cannot touch another's workers."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]+$", var.master_id))
    error_message = "master_id must be the master's id from run.json (letters, digits, '.', '_', '-'; no wildcard)."
  }
}

variable "allowed_ami_owners" {
  description = "Account ids (or \"amazon\") whose AMIs the master may launch (IAM condition ec2:Owner). Empty: this account's own AMIs, or any owner when allowed_ami_ids is set."
  type        = list(string)
  default     = []
}

variable "allowed_ami_ids" {
  description = "AMI ids the master may launch (IAM condition ec2:ImageID), on top of the owner check. Empty: any AMI of an allowed owner."
  type        = list(string)
  default     = []
}

variable "allowed_instance_types" {
  description = "Instance types the master may launch (IAM condition ec2:InstanceType; wildcards such as \"t3.*\" allowed). Keeps a misconfigured or compromised master from starting expensive instances."
  type        = list(string)

  validation {
    condition     = length(var.allowed_instance_types) > 0
    error_message = "allowed_instance_types must name at least one instance type."
  }
}

variable "grpc_port" {
  description = "Port of the master's gRPC endpoint (master.grpc_listen); the only port workers may reach on the master."
  type        = number
  default     = 8481
}

variable "master_security_group_id" {
  description = "Existing security group of the master. When null the module creates one."
  type        = string
  default     = null
}

variable "worker_egress_cidrs" {
  description = "Where workers may connect to (builds fetch sources and packages)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "linux_ami_id" {
  description = "Linux worker AMI (images/linux). When null no Linux launch template is created."
  type        = string
  default     = null
}

variable "windows_ami_id" {
  description = "Windows worker AMI (images/windows). When null no Windows launch template is created."
  type        = string
  default     = null
}

variable "root_volume_size" {
  description = "Root volume size of workers, GiB."
  type        = number
  default     = 30
}

variable "root_volume_type" {
  description = "Root volume type of workers."
  type        = string
  default     = "gp3"
}

variable "linux_root_device_name" {
  description = "Root device name of the Linux AMI (/dev/sda1 on Ubuntu, /dev/xvda on Amazon Linux)."
  type        = string
  default     = "/dev/sda1"
}

variable "windows_root_device_name" {
  description = "Root device name of the Windows AMI."
  type        = string
  default     = "/dev/sda1"
}

variable "create_master_role" {
  description = "Create an IAM role and instance profile for a master that runs on EC2. The policy is created either way."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags on every resource this module creates."
  type        = map(string)
  default     = {}
}
