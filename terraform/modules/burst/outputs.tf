output "worker_security_group_id" {
  description = "Security group of the workers (already in the launch templates)."
  value       = aws_security_group.worker.id
}

output "master_security_group_id" {
  description = "Security group of the master: gRPC from workers."
  value       = local.master_security_group_id
}

output "worker_instance_profile_name" {
  description = "Instance profile of the workers (already in the launch templates); set it as instance_profile when launching without a template."
  value       = aws_iam_instance_profile.worker.name
}

output "worker_role_arn" {
  description = "Role of the workers; the only role the master may pass."
  value       = aws_iam_role.worker.arn
}

output "master_policy_arn" {
  description = "The master's least-privilege policy; attach it to whatever runs the master."
  value       = aws_iam_policy.master.arn
}

output "master_instance_profile_name" {
  description = "Instance profile for a master on EC2 (null when create_master_role is false)."
  value       = one(aws_iam_instance_profile.master[*].name)
}

output "linux_launch_template_name" {
  description = "Launch template of Linux workers (null without linux_ami_id)."
  value       = one(aws_launch_template.linux[*].name)
}

output "windows_launch_template_name" {
  description = "Launch template of Windows workers (null without windows_ami_id)."
  value       = one(aws_launch_template.windows[*].name)
}

output "worker_user_data_settings" {
  description = "Settings the burst master's user-data hands each worker (for custom images)."
  value       = local.user_data_settings
}

output "tag_keys" {
  description = "Tag keys every burst worker instance carries from launch."
  value = {
    master = local.tag_master
    pool   = local.tag_pool
    worker = local.tag_worker
  }
}
