package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gorm.io/gorm"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/inventory"
)

type dbOptions struct {
	driver  string
	dsn     string
	timeout time.Duration
}

func (o *dbOptions) register(fs *pflag.FlagSet) {
	fs.StringVar(&o.driver, "driver", consumer.DriverSQLite, "database driver: postgres, mysql or sqlite")
	fs.StringVar(&o.dsn, "dsn", "", "database DSN (default: $"+consumer.EnvDatabaseDSN+"; prefer the variable for a DSN with a password)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long to wait for the database")
}

// open opens and pings the database; the DSN never appears in an error.
func (o *dbOptions) open(ctx context.Context) (*gorm.DB, func(), error) {
	switch o.driver {
	case consumer.DriverPostgres, consumer.DriverMySQL, consumer.DriverSQLite:
	default:
		return nil, nil, fmt.Errorf("--driver: %q must be %s, %s or %s", o.driver, consumer.DriverPostgres, consumer.DriverMySQL, consumer.DriverSQLite)
	}
	dsn := o.dsn
	if dsn == "" {
		dsn = os.Getenv(consumer.EnvDatabaseDSN)
	}
	if dsn == "" {
		return nil, nil, fmt.Errorf("no database: give --dsn or set %s", consumer.EnvDatabaseDSN)
	}
	db, err := consumer.OpenDatabase(o.driver, dsn)
	if err != nil {
		return nil, nil, err
	}
	closeDB := func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	}
	if err := consumer.PingDatabase(ctx, db, o.timeout); err != nil {
		closeDB()
		return nil, nil, fmt.Errorf("cannot reach the %s database: %s", o.driver, oneLine(err))
	}
	return db, closeDB, nil
}

func newDBCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Prepare the inventory handler's database: migrate, seed, list products",
		Long: `Prepare the database of the inventory.product-updates handler on any driver: migrate creates
or updates the products table (like db:create + db:migrate), seed adds the sample
products, products lists what is stored (like Product.all in a console).

The DSN comes from --dsn or ` + consumer.EnvDatabaseDSN + `, e.g. a file path for sqlite,
postgres://user:pass@host:5432/shop?sslmode=disable for postgres,
user:pass@tcp(host:3306)/shop?parseTime=true for mysql.`,
	}
	cmd.AddCommand(newDBMigrateCommand(), newDBSeedCommand(), newDBProductsCommand())
	return cmd
}

func newDBMigrateCommand() *cobra.Command {
	var o dbOptions
	cmd := &cobra.Command{
		Use:     "migrate",
		Short:   "Create or update the products table",
		Example: "  kafkasub db migrate --dsn ./shop.sqlite3\n  KAFKASUB_DATABASE_DSN=postgres://... kafkasub db migrate --driver postgres",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, closeDB, err := o.open(cmd.Context())
			if err != nil {
				return err
			}
			defer closeDB()
			if err := inventory.Migrate(cmd.Context(), db); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Migrated the %s database: table products is current.\n", o.driver)
			return nil
		},
	}
	o.register(cmd.Flags())
	return cmd
}

func newDBSeedCommand() *cobra.Command {
	var o dbOptions
	cmd := &cobra.Command{
		Use:   "seed",
		Short: "Add the sample products (existing codes are left alone)",
		Long: `Add the sample products to a migrated database. A product whose code exists already is
left as it is, so seeding twice does not reset inventories.`,
		Example: "  kafkasub db seed --dsn ./shop.sqlite3",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, closeDB, err := o.open(cmd.Context())
			if err != nil {
				return err
			}
			defer closeDB()
			if !db.Migrator().HasTable(&inventory.Product{}) {
				return fmt.Errorf("the %s database has no products table; run `kafkasub db migrate` first", o.driver)
			}
			products, err := inventory.Seed(cmd.Context(), db)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Seeded the %s database; the sample products are now:\n", o.driver)
			return writeProducts(cmd.OutOrStdout(), products)
		},
	}
	o.register(cmd.Flags())
	return cmd
}

func newDBProductsCommand() *cobra.Command {
	var o dbOptions
	var output string
	cmd := &cobra.Command{
		Use:     "products",
		Short:   "List the products and their inventory",
		Example: "  kafkasub db products --dsn /tmp/kafkasub-dev/inventory.sqlite3",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != outputTable && output != outputJSON {
				return fmt.Errorf("--output: %q must be %s or %s", output, outputTable, outputJSON)
			}
			db, closeDB, err := o.open(cmd.Context())
			if err != nil {
				return err
			}
			defer closeDB()
			var products []inventory.Product
			if err := db.WithContext(cmd.Context()).Order("id").Find(&products).Error; err != nil {
				return fmt.Errorf("read products: %w", err)
			}
			if output == outputJSON {
				rows := make([]productJSON, len(products))
				for i, p := range products {
					rows[i] = productJSON{ID: p.ID, Code: p.Code, Name: p.Name, Inventory: p.Inventory, UpdatedAt: p.UpdatedAt}
				}
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			return writeProducts(cmd.OutOrStdout(), products)
		},
	}
	o.register(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", outputTable, "output format: table or json")
	return cmd
}

// productJSON is a product as `db products --output json` prints it.
type productJSON struct {
	ID        uint      `json:"id"`
	Code      string    `json:"code"`
	Name      string    `json:"name"`
	Inventory int64     `json:"inventory"`
	UpdatedAt time.Time `json:"updatedAt"`
}

func writeProducts(w io.Writer, products []inventory.Product) error {
	if len(products) == 0 {
		_, err := fmt.Fprintln(w, "No products.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCODE\tNAME\tINVENTORY\tUPDATED")
	for _, p := range products {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\n", p.ID, p.Code, p.Name, p.Inventory, p.UpdatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}
