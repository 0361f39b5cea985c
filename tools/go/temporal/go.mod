module kovn.local/tools/temporal

go 1.26

require github.com/temporalio/cli v1.5.1
